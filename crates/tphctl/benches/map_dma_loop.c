/* Maps N distinct 4 KiB pages of a fresh anonymous region with VFIO_IOMMU_MAP_DMA, one call
 * each, and prints the nanoseconds the calls took (for benches/emulate_overhead.rs: run under
 * `tphctl emulate`, each call trapped and answered by the fake host's type1 IOMMU). N = 16384
 * is 64 MiB in 4 KiB pages. Every 65,000 mappings (dma_entry_limit) all are unmapped, untimed.
 * Usage: map_dma_loop BDF N */
#include <sys/mman.h>
#include <time.h>

#include "../tests/data/emulate/vfio_open.h"

#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)
#define VFIO_IOMMU_UNMAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 14)
#define BATCH 65000ull

struct dma_map {
	uint32_t argsz, flags;
	uint64_t vaddr, iova, size;
};

struct dma_unmap {
	uint32_t argsz, flags;
	uint64_t iova, size;
};

static long long ns_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BDF N\n", argv[0]);
		return 2;
	}
	unsigned long long n = strtoull(argv[2], NULL, 0);
	struct vfio_dev d = vfio_open(argv[1]);
	unsigned long long pages = n < BATCH ? n : BATCH;
	char *mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (mem == MAP_FAILED)
		FAIL("mmap");
	long long ns = 0;
	for (unsigned long long done = 0; done < n;) {
		unsigned long long k = n - done < BATCH ? n - done : BATCH;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (unsigned long long i = 0; i < k; i++) {
			struct dma_map m = { .argsz = sizeof(m), .flags = 3,
					     .vaddr = (uint64_t)(uintptr_t)(mem + 4096 * i),
					     .iova = 0x10000000 + 4096 * i, .size = 4096 };
			if (ioctl(d.container, VFIO_IOMMU_MAP_DMA, &m) != 0)
				FAIL("VFIO_IOMMU_MAP_DMA %llu", done + i);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns += ns_between(&t0, &t1);
		struct dma_unmap u = { .argsz = sizeof(u), .flags = 1 << 1 };
		if (ioctl(d.container, VFIO_IOMMU_UNMAP_DMA, &u) != 0)
			FAIL("VFIO_IOMMU_UNMAP_DMA all");
		done += k;
	}
	printf("%lld\n", ns);
	vfio_close(&d);
	return 0;
}
