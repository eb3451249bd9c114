/* A userspace driver's TPH code for the v7 series of "vfio/pci: Add PCIe TPH support": the
 * VFIO_DEVICE_PCI_TPH ioctl (docs/spec/vfio-tph-v7.md): GET_CAP, ENABLE(DS), SET_ST,
 * GET_ST, clearing SET_ST, DISABLE.
 * Usage: v7_ioctl BDF CPU... ; prints what it sees, exits 0 when every step succeeded. */
#include "vfio_open.h"

#define VFIO_DEVICE_PCI_TPH _IO(VFIO_TYPE, VFIO_BASE + 22)
#define VFIO_PCI_TPH_GET_CAP 0
#define VFIO_PCI_TPH_ENABLE 1
#define VFIO_PCI_TPH_DISABLE 2
#define VFIO_PCI_TPH_GET_ST 3
#define VFIO_PCI_TPH_SET_ST 4
#define VFIO_PCI_TPH_MODE_IV (1 << 0)
#define VFIO_PCI_TPH_MODE_DS (1 << 1)
#define PCI_EXT_CAP_ID_TPH 0x17

struct vfio_pci_tph_cap {
	uint8_t supported_modes;
	uint8_t reserved0;
	uint16_t st_table_sz;
	uint32_t reserved;
};

struct vfio_pci_tph_ctrl {
	uint8_t mode;
	uint8_t reserved[7];
};

struct vfio_pci_tph_entry {
	uint32_t cpu;
	uint8_t mem_type;
	uint8_t reserved0;
	uint16_t index;
	uint16_t st;
	uint16_t reserved1;
};

struct vfio_pci_tph_st {
	uint32_t count;
	uint32_t reserved;
	struct vfio_pci_tph_entry ents[];
};

struct vfio_device_pci_tph_op {
	uint32_t argsz;
	uint32_t op;
	union {
		struct vfio_pci_tph_cap cap;
		struct vfio_pci_tph_ctrl ctrl;
		struct vfio_pci_tph_st st;
	};
};

_Static_assert(sizeof(struct vfio_device_pci_tph_op) == 16, "v7 op is 16 bytes");
_Static_assert(sizeof(struct vfio_pci_tph_entry) == 12, "v7 entry is 12 bytes");

static struct vfio_device_pci_tph_op *op_with(uint32_t op, uint32_t count)
{
	size_t argsz = sizeof(struct vfio_device_pci_tph_op) + count * sizeof(struct vfio_pci_tph_entry);
	struct vfio_device_pci_tph_op *o = calloc(1, argsz);
	if (!o)
		FAIL("calloc");
	o->argsz = argsz;
	o->op = op;
	o->st.count = count;
	return o;
}

/* SET_ST of entries 0..n-1 to `cpus` (or clears them with 0xFFFFFFFF). */
static void set_st(int fd, const uint32_t *cpus, uint32_t n, int clear)
{
	struct vfio_device_pci_tph_op *o = op_with(VFIO_PCI_TPH_SET_ST, n);
	for (uint32_t i = 0; i < n; i++) {
		o->st.ents[i].cpu = clear ? 0xFFFFFFFFu : cpus[i];
		o->st.ents[i].index = i;
	}
	if (ioctl(fd, VFIO_DEVICE_PCI_TPH, o) != 0)
		FAIL("SET_ST");
	free(o);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s BDF CPU...\n", argv[0]);
		return 2;
	}
	uint32_t n = argc - 2, cpus[64];
	for (uint32_t i = 0; i < n && i < 64; i++)
		cpus[i] = strtoul(argv[2 + i], NULL, 0);
	struct vfio_dev d = vfio_open(argv[1]);

	struct vfio_device_pci_tph_op cap = { .argsz = sizeof(cap), .op = VFIO_PCI_TPH_GET_CAP };
	if (ioctl(d.fd, VFIO_DEVICE_PCI_TPH, &cap) != 0)
		FAIL("GET_CAP");
	printf("query: iv %d ds %d table %u\n", !!(cap.cap.supported_modes & VFIO_PCI_TPH_MODE_IV),
	       !!(cap.cap.supported_modes & VFIO_PCI_TPH_MODE_DS), cap.cap.st_table_sz);

	struct vfio_device_pci_tph_op en = { .argsz = sizeof(en), .op = VFIO_PCI_TPH_ENABLE };
	en.ctrl.mode = VFIO_PCI_TPH_MODE_DS;
	if (ioctl(d.fd, VFIO_DEVICE_PCI_TPH, &en) != 0)
		FAIL("ENABLE DS");
	uint32_t tph = find_ext_cap(&d, PCI_EXT_CAP_ID_TPH);
	printf("enabled: control 0x%08x\n", cfg_read32(&d, tph + 0x8));

	set_st(d.fd, cpus, n, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t word = cfg_read32(&d, tph + 0xc + 2 * (i & ~1u));
		printf("st[%u] = %#06x\n", i, (word >> (16 * (i & 1))) & 0xffff);
	}
	struct vfio_device_pci_tph_op *get = op_with(VFIO_PCI_TPH_GET_ST, n);
	for (uint32_t i = 0; i < n; i++)
		get->st.ents[i].cpu = cpus[i];
	if (ioctl(d.fd, VFIO_DEVICE_PCI_TPH, get) != 0)
		FAIL("GET_ST");
	for (uint32_t i = 0; i < n; i++)
		printf("cpu %u tag %#06x\n", cpus[i], get->st.ents[i].st);
	free(get);

	set_st(d.fd, cpus, n, 1);
	struct vfio_device_pci_tph_op dis = { .argsz = sizeof(dis), .op = VFIO_PCI_TPH_DISABLE };
	if (ioctl(d.fd, VFIO_DEVICE_PCI_TPH, &dis) != 0)
		FAIL("DISABLE");
	printf("disabled: control 0x%08x\n", cfg_read32(&d, tph + 0x8));
	vfio_close(&d);
	return 0;
}
