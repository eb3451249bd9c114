/* The legacy VFIO opening sequence every userspace driver performs (shared by the two test
 * programs): container, IOMMU group, device fd, and the config region's place in the device fd.
 * Written from the mainline UAPI (include/uapi/linux/vfio.h); no kernel headers needed. */
#ifndef TPH_TEST_VFIO_OPEN_H
#define TPH_TEST_VFIO_OPEN_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VFIO_TYPE ';'
#define VFIO_BASE 100
#define VFIO_GET_API_VERSION _IO(VFIO_TYPE, VFIO_BASE + 0)
#define VFIO_CHECK_EXTENSION _IO(VFIO_TYPE, VFIO_BASE + 1)
#define VFIO_SET_IOMMU _IO(VFIO_TYPE, VFIO_BASE + 2)
#define VFIO_GROUP_GET_STATUS _IO(VFIO_TYPE, VFIO_BASE + 3)
#define VFIO_GROUP_SET_CONTAINER _IO(VFIO_TYPE, VFIO_BASE + 4)
#define VFIO_GROUP_GET_DEVICE_FD _IO(VFIO_TYPE, VFIO_BASE + 6)
#define VFIO_DEVICE_GET_REGION_INFO _IO(VFIO_TYPE, VFIO_BASE + 8)
#define VFIO_DEVICE_SET_IRQS _IO(VFIO_TYPE, VFIO_BASE + 10)
#define VFIO_API_VERSION 0
#define VFIO_TYPE1_IOMMU 1
#define VFIO_TYPE1v2_IOMMU 3
#define VFIO_GROUP_FLAGS_VIABLE (1 << 0)
#define VFIO_GROUP_FLAGS_CONTAINER_SET (1 << 1)
#define VFIO_PCI_CONFIG_REGION_INDEX 7

struct vfio_group_status {
	uint32_t argsz;
	uint32_t flags;
};

struct vfio_region_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t cap_offset;
	uint64_t size;
	uint64_t offset;
};

/* An opened device: its fd and where its config space starts in that fd. */
struct vfio_dev {
	int container, group, fd;
	uint64_t config;
};

#define FAIL(...)                                                                         \
	do {                                                                              \
		fprintf(stderr, __VA_ARGS__);                                             \
		fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));              \
		exit(1);                                                                  \
	} while (0)

/* The IOMMU group of `bdf`: the number its sysfs iommu_group link points at. */
static inline int iommu_group_of(const char *bdf)
{
	char path[256], target[256];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		FAIL("readlink %s", path);
	target[n] = 0;
	const char *slash = strrchr(target, '/');
	return atoi(slash ? slash + 1 : target);
}

/* Opens `bdf` in a new container with IOMMU type `iommu` (0: type1v2 when the kernel has it,
 * else type1). */
static inline struct vfio_dev vfio_open_type(const char *bdf, int iommu)
{
	struct vfio_dev d;
	char path[64];
	d.container = open("/dev/vfio/vfio", O_RDWR);
	if (d.container < 0)
		FAIL("open /dev/vfio/vfio");
	if (ioctl(d.container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		FAIL("VFIO_GET_API_VERSION");
	if (iommu == 0) {
		iommu = VFIO_TYPE1v2_IOMMU;
		if (ioctl(d.container, VFIO_CHECK_EXTENSION, iommu) <= 0)
			iommu = VFIO_TYPE1_IOMMU;
	}
	if (ioctl(d.container, VFIO_CHECK_EXTENSION, iommu) <= 0)
		FAIL("VFIO_CHECK_EXTENSION: no IOMMU of type %d", iommu);
	snprintf(path, sizeof(path), "/dev/vfio/%d", iommu_group_of(bdf));
	d.group = open(path, O_RDWR);
	if (d.group < 0)
		FAIL("open %s", path);
	struct vfio_group_status status = { .argsz = sizeof(status) };
	if (ioctl(d.group, VFIO_GROUP_GET_STATUS, &status) != 0)
		FAIL("VFIO_GROUP_GET_STATUS");
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		FAIL("group %s not viable", path);
	if (ioctl(d.group, VFIO_GROUP_SET_CONTAINER, &d.container) != 0)
		FAIL("VFIO_GROUP_SET_CONTAINER");
	status.flags = 0;
	if (ioctl(d.group, VFIO_GROUP_GET_STATUS, &status) != 0 ||
	    !(status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET))
		FAIL("VFIO_GROUP_GET_STATUS after SET_CONTAINER");
	if (ioctl(d.container, VFIO_SET_IOMMU, iommu) != 0)
		FAIL("VFIO_SET_IOMMU");
	d.fd = ioctl(d.group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (d.fd < 0)
		FAIL("VFIO_GROUP_GET_DEVICE_FD %s", bdf);
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	if (ioctl(d.fd, VFIO_DEVICE_GET_REGION_INFO, &reg) != 0)
		FAIL("VFIO_DEVICE_GET_REGION_INFO config");
	d.config = reg.offset;
	return d;
}

static inline struct vfio_dev vfio_open(const char *bdf)
{
	return vfio_open_type(bdf, 0);
}

static inline uint32_t cfg_read32(const struct vfio_dev *d, uint32_t off)
{
	uint32_t v;
	if (pread(d->fd, &v, 4, d->config + off) != 4)
		FAIL("config read at %#x", off);
	return v;
}

/* The offset of extended capability `id` (a bounded walk from 0x100), 0 when absent. */
static inline uint32_t find_ext_cap(const struct vfio_dev *d, uint16_t id)
{
	uint32_t off = 0x100;
	for (int steps = 0; off >= 0x100 && steps < 480; steps++) {
		uint32_t hdr = cfg_read32(d, off);
		if (hdr == 0 || hdr == 0xffffffff)
			return 0;
		if ((hdr & 0xffff) == id)
			return off;
		off = (hdr >> 20) & 0xffc;
	}
	return 0;
}

static inline void vfio_close(struct vfio_dev *d)
{
	close(d->fd);
	close(d->group);
	close(d->container);
}

#endif
