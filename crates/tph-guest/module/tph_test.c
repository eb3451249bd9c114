// SPDX-License-Identifier: GPL-2.0
/*
 * tph_test: drives the kernel's own TPH core (include/linux/pci-tph.h) on one PCI function, one
 * call per command, for the project's real-kernel tests.
 *
 * Write a command to /sys/kernel/debug/tph_test/ctl; reading the file gives the lines of the last
 * command, one per call, "<command> = <return value>[ <details>]" (also in the kernel log). The
 * write itself succeeds whenever the command was understood, whatever the call returned.
 *
 *   dev DDDD:BB:DD.F      select the function (held until the next dev or unload)
 *   enable_device         pci_enable_device + pci_set_master
 *   msix N                pci_alloc_irq_vectors(N, N, MSI-X); "msix 0" frees them
 *   enable MODE           pcie_enable_tph(MODE)          (0 NS, 1 IV, 2 DS, others as given)
 *   disable               pcie_disable_tph
 *   state                 the core's view: tph_cap, enabled, mode, req_type, table loc and size
 *   get_st CPU vm|pm      pcie_tph_get_cpu_st
 *   get_st_all            get_st for every possible CPU and both memory types
 *   set_st INDEX TAG      pcie_tph_set_st_entry
 *   reset                 pci_reset_function (saves and restores the state)
 *   cfg OFFSET            the configuration dword at OFFSET
 *   devcap2               Device Capabilities 2 (pcie_capability_read_dword) and its TPH
 *                         Completer Supported field
 *   msix_ctrl INDEX       Vector Control of MSI-X entry INDEX, read from the device's table
 *   mark                  from now on (until the next dev), before each command's accesses
 *                         write the marker dword 0x7470_0000 | N (N counts from 1) to
 *                         configuration offset 0 (Vendor/Device ID, read-only: the device
 *                         ignores it, its vfio-user server's trace shows it), and log each TPH
 *                         core call (kernel log only) as "tph_test: call N OP ARGS -> RET [TAG]"
 *                         for the project's differential (tph-testkit/src/differential.rs);
 *                         commands that are no core call (enable_device, cfg, msix_ctrl) get a
 *                         marker too, and no call line, so their accesses land in no call's window
 */
#include <linux/bitfield.h>
#include <linux/debugfs.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/pci-tph.h>
#include <linux/uaccess.h>

static DEFINE_MUTEX(lock);
static struct pci_dev *pdev;
static bool device_enabled;
static int vectors;
static bool marking;
static unsigned int seq;
static char out[8192];
static size_t out_len;
static struct dentry *dir;

static __printf(1, 2) void say(const char *fmt, ...)
{
	char line[256];
	va_list args;
	int n;

	va_start(args, fmt);
	n = vscnprintf(line, sizeof(line), fmt, args);
	va_end(args);
	pr_info("tph_test: %s\n", line);
	out_len += scnprintf(out + out_len, sizeof(out) - out_len, "%s\n", line);
}

#define TPH_TEST_MARKER 0x74700000

/* Writes the next marker when marking; its number (0: not marking). */
static unsigned int mark(void)
{
	if (!marking)
		return 0;
	seq++;
	pci_write_config_dword(pdev, PCI_VENDOR_ID, TPH_TEST_MARKER | (seq & 0xffff));
	return seq;
}

/* The call line of marker n (none when not marking). */
static __printf(2, 3) void call_line(unsigned int n, const char *fmt, ...)
{
	va_list args;
	char line[128];

	if (!n)
		return;
	va_start(args, fmt);
	vscnprintf(line, sizeof(line), fmt, args);
	va_end(args);
	pr_info("tph_test: call %u %s\n", n, line);
}

static void release_device(void)
{
	if (!pdev)
		return;
	if (pdev->tph_enabled)
		pcie_disable_tph(pdev);
	if (vectors > 0)
		pci_free_irq_vectors(pdev);
	vectors = 0;
	if (device_enabled)
		pci_disable_device(pdev);
	device_enabled = false;
	pci_dev_put(pdev);
	pdev = NULL;
	marking = false;
}

static int get_st(unsigned int cpu, enum tph_mem_type mem)
{
	u16 tag = 0xffff;
	unsigned int n = mark();
	int ret = pcie_tph_get_cpu_st(pdev, mem, cpu, &tag);

	if (ret)
		call_line(n, "get_cpu_st %u %s -> %d", cpu, mem == TPH_MEM_TYPE_VM ? "vm" : "pm", ret);
	else
		call_line(n, "get_cpu_st %u %s -> 0 %#x", cpu,
			  mem == TPH_MEM_TYPE_VM ? "vm" : "pm", tag);
	say("get_st %u %s = %d tag=%#x", cpu, mem == TPH_MEM_TYPE_VM ? "vm" : "pm", ret, tag);
	return ret;
}

static void msix_ctrl(unsigned int index)
{
	u32 table, ctrl;
	u16 flags;
	void __iomem *base;
	int bar;

	mark();
	if (!pdev->msix_cap) {
		say("msix_ctrl %u = %d", index, -ENODEV);
		return;
	}
	pci_read_config_word(pdev, pdev->msix_cap + PCI_MSIX_FLAGS, &flags);
	if (index > (flags & PCI_MSIX_FLAGS_QSIZE)) {
		say("msix_ctrl %u = %d", index, -ERANGE);
		return;
	}
	pci_read_config_dword(pdev, pdev->msix_cap + PCI_MSIX_TABLE, &table);
	bar = table & PCI_MSIX_TABLE_BIR;
	base = ioremap(pci_resource_start(pdev, bar) + (table & PCI_MSIX_TABLE_OFFSET) +
		       index * PCI_MSIX_ENTRY_SIZE, PCI_MSIX_ENTRY_SIZE);
	if (!base) {
		say("msix_ctrl %u = %d", index, -ENOMEM);
		return;
	}
	ctrl = readl(base + PCI_MSIX_ENTRY_VECTOR_CTRL);
	iounmap(base);
	say("msix_ctrl %u = 0 ctrl=%#010x", index, ctrl);
}

static int run(char *cmd)
{
	unsigned int a, b, domain, bus, slot, fn;
	char mem[4];
	int ret, cpu, loc, size;
	unsigned int n;

	if (sscanf(cmd, "dev %x:%x:%x.%x", &domain, &bus, &slot, &fn) == 4) {
		release_device();
		pdev = pci_get_domain_bus_and_slot(domain, bus, PCI_DEVFN(slot, fn));
		if (!pdev) {
			say("dev %04x:%02x:%02x.%x = %d", domain, bus, slot, fn, -ENODEV);
			return 0;
		}
		say("dev %s = 0 type=%d tph_cap=%#x", pci_name(pdev), pci_pcie_type(pdev),
		    pdev->tph_cap);
		return 0;
	}
	if (!pdev) {
		say("%s = %d no device selected", cmd, -ENODEV);
		return 0;
	}
	if (!strcmp(cmd, "mark")) {
		marking = true;
		say("mark = 0");
	} else if (!strcmp(cmd, "enable_device")) {
		mark();
		ret = pci_enable_device(pdev);
		if (!ret) {
			device_enabled = true;
			pci_set_master(pdev);
		}
		say("enable_device = %d", ret);
	} else if (sscanf(cmd, "msix %u", &a) == 1) {
		n = mark();
		if (a == 0) {
			pci_free_irq_vectors(pdev);
			vectors = 0;
			call_line(n, "msix 0 -> 0");
			say("msix 0 = 0");
		} else {
			ret = pci_alloc_irq_vectors(pdev, a, a, PCI_IRQ_MSIX);
			if (ret > 0)
				vectors = ret;
			/* The differential's msix call answers 0 when it got the vectors. */
			call_line(n, "msix %u -> %d", a, ret == (int)a ? 0 : ret);
			say("msix %u = %d", a, ret);
		}
	} else if (sscanf(cmd, "enable %u", &a) == 1) {
		n = mark();
		ret = pcie_enable_tph(pdev, a);
		call_line(n, "enable %u -> %d", a, ret);
		say("enable %u = %d", a, ret);
	} else if (!strcmp(cmd, "disable")) {
		n = mark();
		pcie_disable_tph(pdev);
		call_line(n, "disable -> 0");
		say("disable = 0");
	} else if (!strcmp(cmd, "state")) {
		loc = 0;
		size = 0;
		if (pdev->tph_cap) {
			n = mark();
			loc = pcie_tph_get_st_table_loc(pdev);
			call_line(n, "get_st_table_loc -> %d", loc);
			n = mark();
			size = pcie_tph_get_st_table_size(pdev);
			call_line(n, "get_st_table_size -> %d", size);
		}
		say("state = 0 tph_cap=%#x enabled=%u mode=%u req_type=%u loc=%u size=%u",
		    pdev->tph_cap, pdev->tph_enabled, pdev->tph_mode, pdev->tph_req_type, loc, size);
	} else if (sscanf(cmd, "get_st %u %3s", &a, mem) == 2 &&
		   (!strcmp(mem, "vm") || !strcmp(mem, "pm"))) {
		get_st(a, strcmp(mem, "vm") ? TPH_MEM_TYPE_PM : TPH_MEM_TYPE_VM);
	} else if (!strcmp(cmd, "get_st_all")) {
		for_each_possible_cpu(cpu) {
			get_st(cpu, TPH_MEM_TYPE_VM);
			get_st(cpu, TPH_MEM_TYPE_PM);
		}
	} else if (sscanf(cmd, "set_st %u %i", &a, &b) == 2) {
		n = mark();
		ret = pcie_tph_set_st_entry(pdev, a, b);
		call_line(n, "set_st_entry %u %#x -> %d", a, b, ret);
		say("set_st %u %#x = %d", a, b, ret);
	} else if (!strcmp(cmd, "reset")) {
		n = mark();
		ret = pci_reset_function(pdev);
		call_line(n, "reset -> %d", ret);
		say("reset = %d", ret);
	} else if (sscanf(cmd, "cfg %i", &a) == 1) {
		u32 val = 0;

		mark();
		ret = pci_read_config_dword(pdev, a, &val);
		say("cfg %#x = %d val=%#010x", a, ret, val);
	} else if (!strcmp(cmd, "devcap2")) {
		u32 val = 0;

		ret = pcie_capability_read_dword(pdev, PCI_EXP_DEVCAP2, &val);
		say("devcap2 = %d val=%#010x tph_comp=%lu", ret, val,
		    FIELD_GET(PCI_EXP_DEVCAP2_TPH_COMP_MASK, val));
	} else if (sscanf(cmd, "msix_ctrl %u", &a) == 1) {
		msix_ctrl(a);
	} else {
		return -EINVAL;
	}
	return 0;
}

static ssize_t ctl_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char cmd[128];
	int ret;

	if (len >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, len))
		return -EFAULT;
	cmd[len] = '\0';
	strim(cmd);
	mutex_lock(&lock);
	out_len = 0;
	out[0] = '\0';
	ret = run(strim(cmd));
	mutex_unlock(&lock);
	return ret ? ret : len;
}

static ssize_t ctl_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, out, out_len);
	mutex_unlock(&lock);
	return ret;
}

static const struct file_operations ctl_fops = {
	.owner = THIS_MODULE,
	.read = ctl_read,
	.write = ctl_write,
	.llseek = default_llseek,
};

static int __init tph_test_init(void)
{
	dir = debugfs_create_dir("tph_test", NULL);
	debugfs_create_file("ctl", 0600, dir, NULL, &ctl_fops);
	return 0;
}

static void __exit tph_test_exit(void)
{
	debugfs_remove_recursive(dir);
	mutex_lock(&lock);
	release_device();
	mutex_unlock(&lock);
}

module_init(tph_test_init);
module_exit(tph_test_exit);
MODULE_DESCRIPTION("Drives the kernel's TPH core on one function (test module)");
MODULE_LICENSE("GPL");
