/* Opens one vfio-pci function the way a userspace driver does (container, group, type1 IOMMU,
 * device fd) and reads its Vendor and Device ID through the config region. Usage:
 * open_device BDF OUT; it writes one `name value` line per step to OUT and exits 0 when every
 * step worked, 1 at the first that did not (its line says which and why). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

static FILE *out;

static int fail(const char *step)
{
	fprintf(out, "failed %s: %s\n", step, strerror(errno));
	fclose(out);
	return 1;
}

int main(int argc, char **argv)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info config = { .argsz = sizeof(config) };
	const char *group_name;
	int container, group, device, ret, group_no;
	uint16_t ids[2];
	ssize_t len;

	if (argc != 3) {
		fprintf(stderr, "usage: %s BDF OUT\n", argv[0]);
		return 2;
	}
	out = fopen(argv[2], "w");
	if (!out) {
		perror(argv[2]);
		return 2;
	}

	container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0)
		return fail("open /dev/vfio/vfio");
	ret = ioctl(container, VFIO_GET_API_VERSION);
	fprintf(out, "api %d\n", ret);
	ret = ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	fprintf(out, "type1v2 %d\n", ret);

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", argv[1]);
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return fail("readlink iommu_group");
	link[len] = '\0';
	group_name = strrchr(link, '/');
	group_name = group_name ? group_name + 1 : link;
	if (sscanf(group_name, "%d", &group_no) != 1) {
		errno = EINVAL;
		return fail("iommu_group number");
	}
	fprintf(out, "group %d\n", group_no);

	snprintf(path, sizeof(path), "/dev/vfio/%d", group_no);
	group = open(path, O_RDWR);
	if (group < 0)
		return fail("open group");
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status))
		return fail("VFIO_GROUP_GET_STATUS");
	fprintf(out, "viable %d\n", !!(status.flags & VFIO_GROUP_FLAGS_VIABLE));
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container))
		return fail("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return fail("VFIO_SET_IOMMU");

	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[1]);
	if (device < 0)
		return fail("VFIO_GROUP_GET_DEVICE_FD");
	if (ioctl(device, VFIO_DEVICE_GET_INFO, &info))
		return fail("VFIO_DEVICE_GET_INFO");
	fprintf(out, "pci %d\n", !!(info.flags & VFIO_DEVICE_FLAGS_PCI));
	fprintf(out, "regions %u irqs %u\n", info.num_regions, info.num_irqs);

	config.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &config))
		return fail("VFIO_DEVICE_GET_REGION_INFO");
	fprintf(out, "config size %llu\n", (unsigned long long)config.size);
	if (pread(device, ids, sizeof(ids), (off_t)config.offset) != (ssize_t)sizeof(ids))
		return fail("pread config");
	fprintf(out, "id %04x:%04x\n", le16toh(ids[0]), le16toh(ids[1]));

	close(device);
	close(group);
	close(container);
	fclose(out);
	return 0;
}
