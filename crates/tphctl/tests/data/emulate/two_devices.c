/* Opens two devices at once (each in its own group and container), asks both for their TPH
 * capability with the v7 GET_CAP, then keeps using the first through a dup() of its fd after
 * closing the original (the device stays open while a duplicate does).
 * Usage: two_devices BDF_A BDF_B ; prints "BDF table N" per call. */
#include "vfio_open.h"

#define VFIO_DEVICE_PCI_TPH _IO(VFIO_TYPE, VFIO_BASE + 22)

struct tph_get_cap {
	uint32_t argsz;
	uint32_t op;
	uint8_t supported_modes;
	uint8_t reserved0;
	uint16_t st_table_sz;
	uint32_t reserved;
};

static void get_cap(int fd, const char *bdf)
{
	struct tph_get_cap cap = { .argsz = sizeof(cap), .op = 0 };
	if (ioctl(fd, VFIO_DEVICE_PCI_TPH, &cap) != 0)
		FAIL("GET_CAP %s", bdf);
	printf("%s table %u\n", bdf, cap.st_table_sz);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BDF_A BDF_B\n", argv[0]);
		return 2;
	}
	struct vfio_dev a = vfio_open(argv[1]);
	struct vfio_dev b = vfio_open(argv[2]);
	get_cap(a.fd, argv[1]);
	get_cap(b.fd, argv[2]);
	int dup_a = dup(a.fd);
	if (dup_a < 0)
		FAIL("dup");
	close(a.fd);
	get_cap(dup_a, argv[1]);
	close(dup_a);
	close(a.group);
	close(a.container);
	vfio_close(&b);
	return 0;
}
