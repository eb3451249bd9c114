/* The device regions as a userspace driver meets them (mainline vfio-pci: region info with the
 * MMAP flag and the MSIX_MAPPABLE capability, vfio_pci_bar_rw excluding the MSI-X table from
 * pread/pwrite, mmap of a BAR holding the live MSI-X table).
 * Usage: regions BDF (a function whose MSI-X table is in BAR 0). Prints what it sees. */
#include "vfio_open.h"

#include <sys/eventfd.h>
#include <sys/mman.h>

#define VFIO_DEVICE_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 7)
#define VFIO_REGION_INFO_FLAG_CAPS (1 << 3)
#define VFIO_PCI_ROM_REGION_INDEX 6
#define VFIO_PCI_VGA_REGION_INDEX 8
#define VFIO_IRQ_SET_DATA_EVENTFD (1 << 2)
#define VFIO_IRQ_SET_ACTION_TRIGGER (1 << 5)
#define VFIO_PCI_MSIX_IRQ_INDEX 2
#define PCI_CAP_ID_MSIX 0x11

struct vfio_info_cap_header {
	uint16_t id;
	uint16_t version;
	uint32_t next;
};

struct irq_set4 {
	uint32_t argsz, flags, index, start, count;
	int32_t fds[4];
};

static const char *err_name(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENOTTY: return "ENOTTY";
	default: return "other";
	}
}

static struct vfio_region_info region(int fd, uint32_t index, uint32_t argsz, void *buf)
{
	struct vfio_region_info *r = buf;
	memset(r, 0, argsz);
	r->argsz = argsz;
	r->index = index;
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, r) != 0)
		FAIL("VFIO_DEVICE_GET_REGION_INFO %u", index);
	return *r;
}

/* The MSI-X table's offset in its BAR (the capability's Table register), from config space. */
static uint32_t msix_table_offset(const struct vfio_dev *d)
{
	uint32_t ptr = cfg_read32(d, 0x34) & 0xff;
	for (int steps = 0; ptr && steps < 48; steps++) {
		uint32_t hdr = cfg_read32(d, ptr);
		if ((hdr & 0xff) == PCI_CAP_ID_MSIX)
			return cfg_read32(d, ptr + 4) & ~7u;
		ptr = (hdr >> 8) & 0xfc;
	}
	FAIL("no MSI-X capability");
}

static void print_vcs(const char *what, volatile uint32_t *table)
{
	printf("%s:", what);
	for (int v = 0; v < 6; v++)
		printf(" %08x", table[4 * v + 3]);
	printf("\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s BDF\n", argv[0]);
		return 2;
	}
	struct vfio_dev d = vfio_open(argv[1]);
	uint64_t buf[16];

	struct vfio_region_info r = region(d.fd, VFIO_PCI_CONFIG_REGION_INDEX, 32, buf);
	printf("config flags %#x size %#llx offset %#llx\n", r.flags, (unsigned long long)r.size,
	       (unsigned long long)r.offset);

	r = region(d.fd, 0, sizeof(buf), buf);
	printf("bar0 flags %#x size %#llx offset %#llx", r.flags, (unsigned long long)r.size,
	       (unsigned long long)r.offset);
	if (r.flags & VFIO_REGION_INFO_FLAG_CAPS) {
		const struct vfio_info_cap_header *h = (const void *)((char *)buf + r.cap_offset);
		printf(" cap_offset %u: cap %u version %u next %u", r.cap_offset, h->id, h->version,
		       h->next);
	}
	printf("\n");
	uint64_t bar0_size = r.size, bar0_offset = r.offset;
	r = region(d.fd, 0, 32, buf);
	printf("bar0 with argsz 32: argsz %u flags %#x cap_offset %u\n", r.argsz, r.flags,
	       r.cap_offset);
	r = region(d.fd, 1, 32, buf);
	printf("bar1 flags %#x size %#llx\n", r.flags, (unsigned long long)r.size);
	r = region(d.fd, VFIO_PCI_ROM_REGION_INDEX, 32, buf);
	printf("rom flags %#x size %#llx\n", r.flags, (unsigned long long)r.size);
	struct vfio_region_info vga = { .argsz = 32, .index = VFIO_PCI_VGA_REGION_INDEX };
	int rc = ioctl(d.fd, VFIO_DEVICE_GET_REGION_INFO, &vga);
	printf("vga: %d %s\n", rc, rc ? err_name(errno) : "-");

	uint32_t table = msix_table_offset(&d);
	uint8_t bytes[8];
	if (pread(d.fd, bytes, 8, bar0_offset + table) != 8)
		FAIL("pread of the MSI-X table");
	printf("pread table:");
	for (int i = 0; i < 8; i++)
		printf(" %02x", bytes[i]);
	printf("\n");
	uint32_t word = 0x64636261, back = 0;
	if (pwrite(d.fd, &word, 4, bar0_offset + 0x100) != 4 ||
	    pread(d.fd, &back, 4, bar0_offset + 0x100) != 4)
		FAIL("pwrite/pread of BAR 0 at 0x100");
	printf("pwrite then pread at 0x100: %#010x\n", back);
	uint32_t unmask = 0;
	printf("pwrite into the table: %zd\n",
	       pwrite(d.fd, &unmask, 4, bar0_offset + table + 12));
	errno = 0;
	rc = (int)pread(d.fd, bytes, 4, bar0_offset + bar0_size);
	printf("pread at the end: %d %s\n", rc, rc < 0 ? err_name(errno) : "-");
	printf("pread across the end: %zd\n",
	       pread(d.fd, bytes, 8, bar0_offset + bar0_size - 4));

	void *map = mmap(NULL, bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd,
			 (off_t)bar0_offset);
	if (map == MAP_FAILED)
		FAIL("mmap BAR 0");
	volatile uint32_t *regs = map;
	volatile uint32_t *vt = (volatile uint32_t *)((char *)map + table);
	printf("mapped 0x100: %#010x\n", regs[0x100 / 4]);
	print_vcs("vector control after open", vt);

	struct irq_set4 irqs = { .argsz = sizeof(irqs),
				 .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
				 .index = VFIO_PCI_MSIX_IRQ_INDEX,
				 .count = 4 };
	for (int i = 0; i < 4; i++) {
		irqs.fds[i] = eventfd(0, EFD_CLOEXEC);
		if (irqs.fds[i] < 0)
			FAIL("eventfd");
	}
	if (ioctl(d.fd, VFIO_DEVICE_SET_IRQS, &irqs) != 0)
		FAIL("VFIO_DEVICE_SET_IRQS");
	print_vcs("vector control after SET_IRQS 4", vt);

	/* A driver programming a vector's message itself, through the mapping. */
	vt[4 * 5 + 2] = 0x1234;
	r = region(d.fd, VFIO_PCI_CONFIG_REGION_INDEX, 32, buf); /* any call on the device */
	printf("vector 5 data through the mapping: %#x\n", vt[4 * 5 + 2]);
	munmap(map, bar0_size);
	vfio_close(&d);
	return 0;
}
