/* DMA mapping in an iommufd IOAS as a cdev driver does it (mainline drivers/iommu/iommufd/
 * ioas.c and io_pagetable.c): each rule of IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP with its errno.
 * Usage: iommufd (run with the device cdevs offered: tphctl emulate --cdev). */
#include <sys/mman.h>

#include "vfio_open.h"

#define IOMMU_IOAS_ALLOC _IO(VFIO_TYPE, 0x81)
#define IOMMU_IOAS_MAP _IO(VFIO_TYPE, 0x85)
#define IOMMU_IOAS_UNMAP _IO(VFIO_TYPE, 0x86)
#define FIXED (1 << 0)
#define WRITE (1 << 1)
#define READ (1 << 2)

struct iommu_ioas_alloc {
	uint32_t size, flags, out_ioas_id;
};
struct iommu_ioas_map {
	uint32_t size, flags, ioas_id, reserved;
	uint64_t user_va, length, iova;
};
struct iommu_ioas_unmap {
	uint32_t size, ioas_id;
	uint64_t iova, length;
};

static int iommufd;
static uint32_t ioas;

static const char *err_name(int e)
{
	switch (e) {
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case EFAULT: return "EFAULT";
	case ENOENT: return "ENOENT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EOVERFLOW: return "EOVERFLOW";
	default: return "other";
	}
}

static void map(const char *what, uint32_t id, uint32_t flags, void *va, uint64_t len,
		uint64_t iova)
{
	struct iommu_ioas_map m = { .size = sizeof(m), .flags = flags, .ioas_id = id,
				    .user_va = (uint64_t)(uintptr_t)va, .length = len, .iova = iova };
	errno = 0;
	int rc = ioctl(iommufd, IOMMU_IOAS_MAP, &m);
	printf("map %s: %d %s", what, rc, rc ? err_name(errno) : "-");
	if (!rc)
		printf(" iova %#llx", (unsigned long long)m.iova);
	printf("\n");
}

static void unmap(const char *what, uint64_t iova, uint64_t len)
{
	struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas, .iova = iova,
				      .length = len };
	errno = 0;
	int rc = ioctl(iommufd, IOMMU_IOAS_UNMAP, &u);
	printf("unmap %s: %d %s", what, rc, rc ? err_name(errno) : "-");
	if (!rc)
		printf(" length %#llx", (unsigned long long)u.length);
	printf("\n");
}

int main(void)
{
	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		FAIL("open /dev/iommu");
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) != 0)
		FAIL("IOMMU_IOAS_ALLOC");
	ioas = alloc.out_ioas_id;
	/* 64 KiB aligned to 64 KiB (the kernel keeps that alignment when it chooses an IOVA),
	 * and nothing mapped right after it. */
	size_t len = 1 << 16;
	char *raw = mmap(NULL, 3 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		FAIL("mmap");
	char *buf = (char *)(((uintptr_t)raw + len - 1) & ~(uintptr_t)(len - 1));
	munmap(buf + len, (size_t)(raw + 3 * len - (buf + len)));

	map("64 KiB at 0x100000", ioas, FIXED | READ | WRITE, buf, len, 0x100000);
	map("the same again", ioas, FIXED | READ | WRITE, buf, len, 0x100000);
	map("overlapping its end", ioas, FIXED | READ | WRITE, buf, len, 0x10f000);
	map("iova not page aligned", ioas, FIXED | READ | WRITE, buf, 4096, 0x200800);
	map("length 0", ioas, FIXED | READ | WRITE, buf, 0, 0x200000);
	map("neither READABLE nor WRITEABLE", ioas, FIXED, buf, 4096, 0x200000);
	map("unknown flag", ioas, FIXED | READ | 0x8, buf, 4096, 0x200000);
	map("in the interrupt window", ioas, FIXED | READ, buf, 4096, 0xfee00000);
	map("memory not mapped", ioas, FIXED | READ | WRITE, buf + len, len, 0x300000);
	map("an IOAS that does not exist", ioas + 7, FIXED | READ, buf, 4096, 0x400000);
	map("4 KiB, the kernel choosing the iova", ioas, READ | WRITE, buf, 4096, 0);
	map("64 KiB, the kernel choosing the iova", ioas, READ | WRITE, buf, len, 0);

	unmap("half of the first area", 0x100000, 0x8000);
	unmap("where nothing is", 0x800000, 0x1000);
	unmap("the first area", 0x100000, len);
	unmap("everything", 0, UINT64_MAX);
	close(iommufd);
	return 0;
}
