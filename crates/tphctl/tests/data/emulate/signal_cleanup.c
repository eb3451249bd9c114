/* A driver that cleans up when it is told to stop, as real drivers do: it opens the device,
 * says "ready", waits for SIGINT, SIGTERM, SIGHUP or SIGQUIT, and then (outside the handler)
 * still talks to the device: a config-space read of the vendor ID and a region-info call.
 * Usage: signal_cleanup BDF ; exits 40 + the signal number when the clean-up calls were
 * answered, 1 when one failed. */
#include <signal.h>

#include "vfio_open.h"

static volatile sig_atomic_t got;

static void on_signal(int sig)
{
	got = sig;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: signal_cleanup BDF\n");
		return 2;
	}
	struct vfio_dev d = vfio_open(argv[1]);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			FAIL("sigaction");
	printf("ready\n");
	fflush(stdout);
	while (!got)
		pause();
	uint32_t id = cfg_read32(&d, 0);
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	if (ioctl(d.fd, VFIO_DEVICE_GET_REGION_INFO, &reg) != 0)
		FAIL("VFIO_DEVICE_GET_REGION_INFO during clean-up");
	printf("signal %d: vendor %04x, config region of %llu bytes\n", (int)got, id & 0xffff,
	       (unsigned long long)reg.size);
	vfio_close(&d);
	return 40 + got;
}
