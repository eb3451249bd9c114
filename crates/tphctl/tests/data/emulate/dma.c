/* DMA mapping through a type1 container as a userspace driver does it (mainline
 * drivers/vfio/vfio_iommu_type1.c): VFIO_IOMMU_GET_INFO and its capability chain, each rule of
 * VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA with its errno, then a 64 MiB region mapped in
 * 4 KiB pages (as DPDK maps memory without huge pages) and unmapped at once.
 * With a second BDF, its own container uses the original type1 (VFIO_TYPE1_IOMMU, as DPDK
 * asks for), whose unmaps do not refuse to split a mapping.
 * Usage: dma BDF [BDF]. Prints one line per step. */
#include "vfio_open.h"

#include <sys/mman.h>

#define VFIO_IOMMU_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 12)
#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)
#define VFIO_IOMMU_UNMAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 14)
#define VFIO_IOMMU_INFO_PGSIZES (1 << 0)
#define VFIO_IOMMU_INFO_CAPS (1 << 1)
#define VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE 1
#define VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION 2
#define VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL 3
#define VFIO_DMA_MAP_FLAG_READ (1 << 0)
#define VFIO_DMA_MAP_FLAG_WRITE (1 << 1)
#define VFIO_DMA_MAP_FLAG_VADDR (1 << 2)
#define VFIO_DMA_UNMAP_FLAG_ALL (1 << 1)
#define RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

struct vfio_iommu_type1_info {
	uint32_t argsz, flags;
	uint64_t iova_pgsizes;
	uint32_t cap_offset, pad;
};

struct vfio_info_cap_header {
	uint16_t id, version;
	uint32_t next;
};

struct vfio_iommu_type1_dma_map {
	uint32_t argsz, flags;
	uint64_t vaddr, iova, size;
};

struct vfio_iommu_type1_dma_unmap {
	uint32_t argsz, flags;
	uint64_t iova, size;
};

static const char *err_name(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case EFAULT: return "EFAULT";
	case ENOENT: return "ENOENT";
	case ENOSPC: return "ENOSPC";
	case ENOTTY: return "ENOTTY";
	default: return "other";
	}
}

static int container;

static void map(const char *what, uint32_t flags, uint64_t vaddr, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = flags, .vaddr = vaddr,
					      .iova = iova, .size = size };
	errno = 0;
	int rc = ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
	printf("map %s: %d %s\n", what, rc, rc ? err_name(errno) : "-");
}

static void unmap(const char *what, uint32_t flags, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .flags = flags, .iova = iova,
						.size = size };
	errno = 0;
	int rc = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);
	printf("unmap %s: %d %s size %#llx\n", what, rc, rc ? err_name(errno) : "-",
	       (unsigned long long)u.size);
}

/* GET_INFO with a buffer large enough for the capabilities; prints the chain. */
static void info(void)
{
	struct vfio_iommu_type1_info small = { .argsz = sizeof(small) };
	if (ioctl(container, VFIO_IOMMU_GET_INFO, &small) != 0)
		FAIL("VFIO_IOMMU_GET_INFO");
	printf("info: flags %#x pgsizes %#llx argsz needed %u cap_offset %u\n", small.flags,
	       (unsigned long long)small.iova_pgsizes, small.argsz, small.cap_offset);
	uint64_t big[64] = { 0 };
	struct vfio_iommu_type1_info *full = (void *)big;
	full->argsz = small.argsz;
	if (small.argsz > sizeof(big) || ioctl(container, VFIO_IOMMU_GET_INFO, full) != 0)
		FAIL("VFIO_IOMMU_GET_INFO with room for the capabilities");
	for (uint32_t at = full->cap_offset; at; ) {
		const struct vfio_info_cap_header *h = (const void *)((char *)big + at);
		const char *body = (const char *)(h + 1);
		printf("  cap %u version %u", h->id, h->version);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			uint32_t n;
			memcpy(&n, body, 4);
			for (uint32_t i = 0; i < n; i++) {
				uint64_t r[2];
				memcpy(r, body + 8 + 16 * i, 16);
				printf(" [%#llx, %#llx]", (unsigned long long)r[0],
				       (unsigned long long)r[1]);
			}
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
			uint32_t avail;
			memcpy(&avail, body, 4);
			printf(" avail %u", avail);
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
			uint64_t pg, max;
			memcpy(&pg, body + 8, 8);
			memcpy(&max, body + 16, 8);
			printf(" pgsize %#llx max_dirty_bitmap_size %#llx", (unsigned long long)pg,
			       (unsigned long long)max);
		}
		printf("\n");
		at = h->next;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s BDF [BDF]\n", argv[0]);
		return 2;
	}
	/* A container without an IOMMU has nobody to pass the request to. */
	container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0)
		FAIL("open /dev/vfio/vfio");
	map("before VFIO_SET_IOMMU", RW, 0, 0, 4096);
	close(container);

	struct vfio_dev d = vfio_open(argv[1]);
	container = d.container;
	info();

	size_t len = 1 << 16;
	char *buf = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		FAIL("mmap");
	uint64_t va = (uint64_t)(uintptr_t)buf;
	munmap(buf + len, len); /* the second half: not mapped any more */
	map("64 KiB at iova 0x100000", RW, va, 0x100000, len);
	map("the same again", RW, va, 0x100000, len);
	map("overlapping its end", RW, va, 0x108000, len);
	map("read only, after it", VFIO_DMA_MAP_FLAG_READ, va, 0x110000, 4096);
	map("vaddr not page aligned", RW, va + 8, 0x200000, 4096);
	map("iova not page aligned", RW, va, 0x200800, 4096);
	map("size 0", RW, va, 0x200000, 0);
	map("no READ or WRITE", 0, va, 0x200000, 4096);
	map("unknown flag", RW | 0x8, va, 0x200000, 4096);
	map("in the interrupt window", RW, va, 0xfee00000, 4096);
	map("above 48 bits", RW, va, 1ull << 48, 4096);
	map("memory not mapped", RW, va + len, 0x300000, len);
	map("VADDR with READ", VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ, va, 0x100000, len);
	map("VADDR of a live mapping", VFIO_DMA_MAP_FLAG_VADDR, va, 0x100000, len);
	map("VADDR of nothing", VFIO_DMA_MAP_FLAG_VADDR, va, 0x400000, len);

	unmap("inside a mapping", 0, 0x104000, 0x1000);
	unmap("where nothing is", 0, 0x800000, 0x1000);
	unmap("size 0", 0, 0x100000, 0);
	unmap("ALL with an iova", VFIO_DMA_UNMAP_FLAG_ALL, 0x100000, 0);
	unmap("exactly the first", 0, 0x100000, len);
	unmap("around the second", 0, 0, 0x200000);

	/* 64 MiB in 4 KiB pages, then gone in one call. */
	size_t big = 64 << 20;
	char *mem = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		FAIL("mmap 64 MiB");
	uint64_t pages = 0;
	for (size_t off = 0; off < big; off += 4096) {
		struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = RW,
						      .vaddr = (uint64_t)(uintptr_t)(mem + off),
						      .iova = 0x10000000 + off, .size = 4096 };
		if (ioctl(container, VFIO_IOMMU_MAP_DMA, &m) != 0)
			FAIL("VFIO_IOMMU_MAP_DMA page %llu", (unsigned long long)pages);
		pages++;
	}
	printf("mapped 64 MiB in %llu pages\n", (unsigned long long)pages);
	info();
	unmap("ALL", VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
	vfio_close(&d);
	if (argc == 3) {
		struct vfio_dev v1 = vfio_open_type(argv[2], VFIO_TYPE1_IOMMU);
		container = v1.container;
		printf("type1 (v1):\n");
		map("64 KiB at iova 0x100000", RW, va, 0x100000, len);
		map("64 KiB at iova 0x200000", RW, va, 0x200000, len);
		unmap("inside the first", 0, 0x104000, 0x1000);
		unmap("from the first's start, 4 KiB", 0, 0x100000, 0x1000);
		unmap("across the second's start", 0, 0x1ff000, 0x2000);
		vfio_close(&v1);
	}
	return 0;
}
