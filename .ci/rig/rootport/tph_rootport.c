// SPDX-License-Identifier: GPL-2.0
/*
 * tph_rootport: stands in for a platform whose PCIe root ports are TPH completers.
 *
 * QEMU's pcie-root-port advertises no TPH completer, so the kernel's TPH core refuses TPH to
 * any endpoint behind it. This module wraps the configuration accessors of each root bus (with
 * the exported pci_bus_set_ops()) and reports the TPH Completer Supported field of every root
 * port's Device Capabilities 2 as the `completer` parameter says: "none", "tph" (TPH only) or
 * "ext" (TPH and extended TPH). Everything else passes through untouched; the parameter can be
 * changed while loaded (/sys/module/tph_rootport/parameters/completer). Unloading restores the
 * original accessors.
 */
#include <linux/bitfield.h>
#include <linux/module.h>
#include <linux/pci.h>

#define MAX_PORTS 32
#define MAX_BUSES 8

struct wrapped_bus {
	struct pci_bus *bus;
	struct pci_ops *orig;
	struct pci_ops ops;
};

struct root_port {
	struct pci_bus *bus;
	unsigned int devfn;
	int devcap2; /* configuration offset of Device Capabilities 2 */
};

static struct wrapped_bus buses[MAX_BUSES];
static int nr_buses;
static struct root_port ports[MAX_PORTS];
static int nr_ports;

/* The TPH Completer Supported field value (PCI_EXP_DEVCAP2_TPH_COMP_*, unshifted). */
static u32 completer = PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY;

static const struct {
	const char *name;
	u32 value;
} completer_names[] = {
	{ "none", PCI_EXP_DEVCAP2_TPH_COMP_NONE },
	{ "tph", PCI_EXP_DEVCAP2_TPH_COMP_TPH_ONLY },
	{ "ext", PCI_EXP_DEVCAP2_TPH_COMP_EXT_TPH },
};

static int completer_set(const char *val, const struct kernel_param *kp)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(completer_names); i++) {
		if (sysfs_streq(val, completer_names[i].name)) {
			WRITE_ONCE(completer, completer_names[i].value);
			return 0;
		}
	}
	return -EINVAL;
}

static int completer_get(char *buf, const struct kernel_param *kp)
{
	u32 cur = READ_ONCE(completer);
	int i;

	for (i = 0; i < ARRAY_SIZE(completer_names); i++)
		if (completer_names[i].value == cur)
			return sysfs_emit(buf, "%s\n", completer_names[i].name);
	return sysfs_emit(buf, "?\n");
}

static const struct kernel_param_ops completer_ops = {
	.set = completer_set,
	.get = completer_get,
};
module_param_cb(completer, &completer_ops, NULL, 0644);
MODULE_PARM_DESC(completer, "TPH completer the root ports report: none, tph (TPH only) or ext (TPH and extended TPH)");

static struct pci_ops *orig_ops(struct pci_bus *bus)
{
	int i;

	for (i = 0; i < nr_buses; i++)
		if (buses[i].bus == bus)
			return buses[i].orig;
	return NULL;
}

static int port_devcap2(struct pci_bus *bus, unsigned int devfn)
{
	int i;

	for (i = 0; i < nr_ports; i++)
		if (ports[i].bus == bus && ports[i].devfn == devfn)
			return ports[i].devcap2;
	return -1;
}

static int wrapped_read(struct pci_bus *bus, unsigned int devfn, int where, int size, u32 *val)
{
	struct pci_ops *orig = orig_ops(bus);
	int devcap2, ret, i;
	u32 field;

	if (!orig)
		return PCIBIOS_DEVICE_NOT_FOUND;
	ret = orig->read(bus, devfn, where, size, val);
	if (ret != PCIBIOS_SUCCESSFUL)
		return ret;
	devcap2 = port_devcap2(bus, devfn);
	if (devcap2 < 0)
		return ret;
	/* The field lies in bits 13:12 of the register: bits 5:4 of its second byte. */
	field = FIELD_PREP(PCI_EXP_DEVCAP2_TPH_COMP_MASK, READ_ONCE(completer)) >> 8;
	for (i = 0; i < size; i++) {
		if (where + i == devcap2 + 1) {
			u32 shift = 8 * i;
			u32 byte = (*val >> shift) & 0xff;

			byte = (byte & ~(PCI_EXP_DEVCAP2_TPH_COMP_MASK >> 8)) | field;
			*val = (*val & ~(0xffu << shift)) | (byte << shift);
		}
	}
	return ret;
}

static int wrapped_write(struct pci_bus *bus, unsigned int devfn, int where, int size, u32 val)
{
	struct pci_ops *orig = orig_ops(bus);

	if (!orig)
		return PCIBIOS_DEVICE_NOT_FOUND;
	return orig->write(bus, devfn, where, size, val);
}

static void unwrap_all(void)
{
	while (nr_buses > 0) {
		nr_buses--;
		pci_bus_set_ops(buses[nr_buses].bus, buses[nr_buses].orig);
	}
}

static int __init tph_rootport_init(void)
{
	struct pci_bus *bus = NULL;
	struct pci_dev *dev;
	int ret = 0;

	pci_lock_rescan_remove();
	while ((bus = pci_find_next_bus(bus)) != NULL) {
		int first = nr_ports;

		list_for_each_entry(dev, &bus->devices, bus_list) {
			if (!pci_is_pcie(dev) || pci_pcie_type(dev) != PCI_EXP_TYPE_ROOT_PORT)
				continue;
			if (nr_ports == MAX_PORTS) {
				ret = -ENOSPC;
				goto out;
			}
			ports[nr_ports].bus = bus;
			ports[nr_ports].devfn = dev->devfn;
			ports[nr_ports].devcap2 = dev->pcie_cap + PCI_EXP_DEVCAP2;
			nr_ports++;
		}
		if (nr_ports == first)
			continue;
		if (nr_buses == MAX_BUSES) {
			ret = -ENOSPC;
			goto out;
		}
		buses[nr_buses].bus = bus;
		buses[nr_buses].orig = bus->ops;
		buses[nr_buses].ops = *bus->ops;
		buses[nr_buses].ops.read = wrapped_read;
		buses[nr_buses].ops.write = wrapped_write;
		nr_buses++;
		pci_bus_set_ops(bus, &buses[nr_buses - 1].ops);
	}
out:
	if (ret)
		unwrap_all();
	pci_unlock_rescan_remove();
	if (!ret)
		pr_info("tph_rootport: %d root ports on %d root buses report TPH completer %#x\n",
			nr_ports, nr_buses, READ_ONCE(completer));
	return ret;
}

static void __exit tph_rootport_exit(void)
{
	pci_lock_rescan_remove();
	unwrap_all();
	pci_unlock_rescan_remove();
}

module_init(tph_rootport_init);
module_exit(tph_rootport_exit);
MODULE_DESCRIPTION("Root ports that report a TPH completer (test rig)");
MODULE_LICENSE("GPL");
