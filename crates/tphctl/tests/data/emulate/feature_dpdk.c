/* A userspace driver's TPH code for the feature revision of "vfio/pci: Add PCIe TPH support",
 * doing what the series author's own DPDK code does (bus/pci: introduce PCIe TPH support,
 * 2026-05-12; see docs/spec/later-revisions.md, "primary evidence"):
 *   query   = read TPH Capability (cap + 4) through the config region;
 *   enable  = one 4-byte config write of the ST Mode value alone (2 = DS) to Control (cap + 8);
 *   SET/GET = VFIO_DEVICE_FEATURE with feature 13 (TPH_ST), memory type VM, CPU ids in data[];
 *   disable = a config write of 0 to Control.
 * One difference: the table size is ST Table Size (bits 26:16) + 1 as PCIe defines it; the
 * author's query extracts it with the table-location mask, which yields only 1 or 2.
 * Usage: feature_dpdk BDF CPU... ; prints what it sees, exits 0 when every step succeeded. */
#include "vfio_open.h"

#define VFIO_DEVICE_FEATURE _IO(VFIO_TYPE, VFIO_BASE + 17)
#define VFIO_DEVICE_FEATURE_GET (1 << 16)
#define VFIO_DEVICE_FEATURE_SET (1 << 17)
#define VFIO_DEVICE_FEATURE_TPH_ST 13
#define VFIO_TPH_ST_MEM_TYPE_VM 0
#define PCI_EXT_CAP_ID_TPH 0x17
#define PCI_TPH_CAP 0x4
#define PCI_TPH_CTRL 0x8
#define PCI_TPH_ST_DS_MODE 0x2

struct vfio_device_feature {
	uint32_t argsz;
	uint32_t flags;
	uint8_t data[];
};

struct vfio_device_feature_tph_st {
	uint32_t flags;
	uint16_t index;
	uint16_t count;
	uint32_t data[];
};

/* One TPH_ST call: `flags` GET or SET, `count` CPU ids from `cpus`, tags written to `tags`. */
static int tph_st(int fd, uint32_t dir, uint16_t index, const uint32_t *cpus, uint16_t count,
		  uint32_t *tags)
{
	size_t argsz = sizeof(struct vfio_device_feature) +
		       sizeof(struct vfio_device_feature_tph_st) + count * sizeof(uint32_t);
	struct vfio_device_feature *f = calloc(1, argsz);
	if (!f)
		return -1;
	struct vfio_device_feature_tph_st *st = (void *)f->data;
	f->argsz = argsz;
	f->flags = VFIO_DEVICE_FEATURE_TPH_ST | dir;
	st->flags = VFIO_TPH_ST_MEM_TYPE_VM;
	st->index = index;
	st->count = count;
	for (uint16_t i = 0; i < count; i++)
		st->data[i] = cpus[i];
	int ret = ioctl(fd, VFIO_DEVICE_FEATURE, f);
	if (ret == 0 && tags)
		for (uint16_t i = 0; i < count; i++)
			tags[i] = st->data[i];
	free(f);
	return ret;
}

static void write_control(const struct vfio_dev *d, uint32_t tph, uint32_t value)
{
	if (pwrite(d->fd, &value, 4, d->config + tph + PCI_TPH_CTRL) != 4)
		FAIL("writing TPH Control %#x", value);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s BDF CPU...\n", argv[0]);
		return 2;
	}
	uint16_t n = argc - 2;
	uint32_t cpus[64], tags[64];
	for (uint16_t i = 0; i < n && i < 64; i++)
		cpus[i] = strtoul(argv[2 + i], NULL, 0);
	struct vfio_dev d = vfio_open(argv[1]);
	uint32_t tph = find_ext_cap(&d, PCI_EXT_CAP_ID_TPH);
	if (!tph)
		FAIL("no TPH capability");
	uint32_t cap = cfg_read32(&d, tph + PCI_TPH_CAP);
	uint32_t loc = (cap >> 9) & 3;
	uint32_t size = (loc == 1 || loc == 2) ? ((cap >> 16) & 0x7ff) + 1 : 0;
	printf("query: iv %d ds %d table %u\n", !!(cap & 2), !!(cap & 4), size);

	write_control(&d, tph, PCI_TPH_ST_DS_MODE);
	printf("enabled: control 0x%08x\n", cfg_read32(&d, tph + PCI_TPH_CTRL));

	if (tph_st(d.fd, VFIO_DEVICE_FEATURE_SET, 0, cpus, n, NULL) != 0)
		FAIL("VFIO_DEVICE_FEATURE SET TPH_ST");
	for (uint16_t i = 0; i < n && loc == 1; i++) {
		uint32_t word = cfg_read32(&d, tph + 0xc + 2 * (i & ~1u));
		printf("st[%u] = %#06x\n", i, (word >> (16 * (i & 1))) & 0xffff);
	}
	if (tph_st(d.fd, VFIO_DEVICE_FEATURE_GET, 0, cpus, n, tags) != 0)
		FAIL("VFIO_DEVICE_FEATURE GET TPH_ST");
	for (uint16_t i = 0; i < n; i++)
		printf("cpu %u tag %#06x\n", cpus[i], tags[i]);

	write_control(&d, tph, 0);
	printf("disabled: control 0x%08x\n", cfg_read32(&d, tph + PCI_TPH_CTRL));
	vfio_close(&d);
	return 0;
}
