/* The legacy opening done out of order, step by step, printing each call's result as
 * "STEP ok" or "STEP errno NAME", then once in order. Usage: vfio_order BDF OTHER_BDF */
#include "vfio_open.h"

static void report(const char *step, int ret)
{
	if (ret >= 0)
		printf("%s ok\n", step);
	else
		printf("%s errno %s\n", step,
		       errno == EINVAL   ? "EINVAL"
		       : errno == EBADFD ? "EBADFD"
		       : errno == ENODEV ? "ENODEV"
					 : strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BDF OTHER_BDF\n", argv[0]);
		return 2;
	}
	char path[64];
	int container = open("/dev/vfio/vfio", O_RDWR);
	snprintf(path, sizeof(path), "/dev/vfio/%d", iommu_group_of(argv[1]));
	int group = open(path, O_RDWR);
	if (container < 0 || group < 0)
		FAIL("open");
	report("get-device-fd-without-container", ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[1]));
	report("set-iommu-without-group", ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	report("set-container-to-a-group-fd", ioctl(group, VFIO_GROUP_SET_CONTAINER, &group));
	report("set-container", ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	report("set-container-again", ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	report("get-device-fd-without-iommu", ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[1]));
	report("set-iommu-not-type1", ioctl(container, VFIO_SET_IOMMU, 8));
	report("set-iommu", ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	report("set-iommu-again", ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	report("get-device-fd-of-another-group", ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]));
	report("get-device-fd", ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[1]));
	return 0;
}
