/* The rules of mmap on a device fd (mainline vfio_pci_core_mmap): MAP_SHARED required, only
 * BAR regions (not the ROM, config or VGA regions, not a region past the last), only a BAR the
 * kernel lets be mapped, the request within the page-aligned BAR; the page of the MSI-X table
 * mappable. Prints layout-independent facts: one line per attempt, its result and errno.
 * Usage: mmap_rules BDF (a function with MSI-X in a memory BAR). */
#include "vfio_open.h"

#include <sys/mman.h>

#define PCI_CAP_ID_MSIX 0x11
#define VFIO_PCI_ROM_REGION_INDEX 6
#define VFIO_PCI_VGA_REGION_INDEX 8

static const char *err_name(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENODEV: return "ENODEV";
	case EACCES: return "EACCES";
	case ENXIO: return "ENXIO";
	case EPERM: return "EPERM";
	default: return "other";
	}
}

static int fd;

/* One attempt: mmap `len` bytes at `off` of the device fd, then unmap what was mapped. */
static void try_map(const char *what, uint64_t off, size_t len, int prot, int flags)
{
	errno = 0;
	void *p = mmap(NULL, len, prot, flags, fd, (off_t)off);
	if (p == MAP_FAILED) {
		printf("%s: -1 %s\n", what, err_name(errno));
		return;
	}
	printf("%s: 0 -\n", what);
	munmap(p, len);
}

static uint64_t region_offset(uint32_t index, uint64_t *size)
{
	struct vfio_region_info r = { .argsz = sizeof(r), .index = index };
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &r) != 0)
		FAIL("VFIO_DEVICE_GET_REGION_INFO %u", index);
	if (size)
		*size = r.size;
	return r.offset;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s BDF\n", argv[0]);
		return 2;
	}
	struct vfio_dev d = vfio_open(argv[1]);
	fd = d.fd;
	uint32_t ptr = cfg_read32(&d, 0x34) & 0xff, table = 0, bir = 6;
	for (int steps = 0; ptr && steps < 48; steps++) {
		uint32_t hdr = cfg_read32(&d, ptr);
		if ((hdr & 0xff) == PCI_CAP_ID_MSIX) {
			uint32_t t = cfg_read32(&d, ptr + 4);
			bir = t & 7;
			table = t & ~7u;
			break;
		}
		ptr = (hdr >> 8) & 0xfc;
	}
	if (bir > 5)
		FAIL("no MSI-X capability in a BAR");
	uint64_t size;
	uint64_t off = region_offset(bir, &size);
	const int rw = PROT_READ | PROT_WRITE;
	try_map("the MSI-X BAR, shared", off, size, rw, MAP_SHARED);
	try_map("the MSI-X BAR, read only", off, size, PROT_READ, MAP_SHARED);
	try_map("the MSI-X BAR, private", off, size, rw, MAP_PRIVATE);
	try_map("the page of the MSI-X table", off + (table & ~0xfffu), 4096, rw, MAP_SHARED);
	try_map("the last page", off + size - 4096, 4096, rw, MAP_SHARED);
	try_map("one page past the end", off + size, 4096, rw, MAP_SHARED);
	try_map("the BAR and one page more", off, size + 4096, rw, MAP_SHARED);
	try_map("not page aligned", off + 1, 4096, rw, MAP_SHARED);
	int unimplemented = -1;
	for (uint32_t i = 0; i < 6 && unimplemented < 0; i++) {
		uint64_t s;
		uint64_t o = region_offset(i, &s);
		if (s == 0) {
			unimplemented = (int)i;
			try_map("a BAR the function does not implement", o, 4096, rw, MAP_SHARED);
		}
	}
	try_map("the ROM region", region_offset(VFIO_PCI_ROM_REGION_INDEX, NULL), 4096, PROT_READ,
		MAP_SHARED);
	try_map("the config region", d.config, 4096, rw, MAP_SHARED);
	try_map("the VGA region", (uint64_t)VFIO_PCI_VGA_REGION_INDEX << 40, 4096, rw, MAP_SHARED);
	try_map("region 9", (uint64_t)9 << 40, 4096, rw, MAP_SHARED);
	vfio_close(&d);
	return 0;
}
