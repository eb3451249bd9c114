/* Times N identical VFIO_DEVICE_PCI_TPH GET_CAP calls on one device fd and prints the total in
 * nanoseconds (for benches/emulate_overhead.rs: run under `tphctl emulate`, each call trapped
 * and answered by the model). Usage: ioctl_loop BDF N */
#include <time.h>

#include "../tests/data/emulate/vfio_open.h"

#define VFIO_DEVICE_PCI_TPH _IO(VFIO_TYPE, VFIO_BASE + 22)

struct tph_get_cap {
	uint32_t argsz;
	uint32_t op;
	uint8_t payload[8];
};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BDF N\n", argv[0]);
		return 2;
	}
	unsigned long long n = strtoull(argv[2], NULL, 0);
	struct vfio_dev d = vfio_open(argv[1]);
	struct tph_get_cap cap = { .argsz = sizeof(cap), .op = 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long long i = 0; i < n; i++)
		if (ioctl(d.fd, VFIO_DEVICE_PCI_TPH, &cap) != 0)
			FAIL("GET_CAP %llu", i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("%lld\n", ns);
	vfio_close(&d);
	return 0;
}
