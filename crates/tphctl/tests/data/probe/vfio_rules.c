/* A probe of mainline vfio-pci's rules, written the way userspace drivers open a device: the
 * container, the device's IOMMU group (from sysfs), VFIO_GROUP_GET_DEVICE_FD. It prints one line
 * per rule (SET_IRQS edges, MSI-X Vector Control across a re-enable, Bus Master at open, Command
 * writes, the config region's end), so the same program can run on a real kernel and under
 * `tphctl emulate` and the outputs be compared. Written from the UAPI (include/uapi/linux/vfio.h)
 * and the PCI register layout; no kernel headers needed.
 *
 * Usage: vfio_rules DDDD:BB:DD.F   (the function must have MSI-X with at least 4 vectors) */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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
#define VFIO_DEVICE_GET_IRQ_INFO _IO(VFIO_TYPE, VFIO_BASE + 9)
#define VFIO_DEVICE_SET_IRQS _IO(VFIO_TYPE, VFIO_BASE + 10)
#define VFIO_TYPE1_IOMMU 1
#define VFIO_TYPE1v2_IOMMU 3
#define CONFIG_REGION 7
#define MSIX_INDEX 2
#define REQ_INDEX 4
#define DATA_NONE (1u << 0)
#define DATA_BOOL (1u << 1)
#define DATA_EVENTFD (1u << 2)
#define ACTION_TRIGGER (1u << 5)
#define IRQ_INFO_NORESIZE (1u << 3)
#define REGION_FLAG_MMAP (1u << 2)
#define COMMAND 0x04
#define BUS_MASTER 0x4

struct group_status {
	uint32_t argsz, flags;
};

struct region_info {
	uint32_t argsz, flags, index, cap_offset;
	uint64_t size, offset;
};

struct irq_info {
	uint32_t argsz, flags, index, count;
};

static int dev_fd;
static uint64_t cfg_off, cfg_size;

static void die(const char *what)
{
	fprintf(stderr, "vfio_rules: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *result(int rc)
{
	static char other[16];
	if (rc == 0)
		return "ok";
	switch (errno) {
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ERANGE: return "ERANGE";
	case EBADF: return "EBADF";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ENOSPC: return "ENOSPC";
	}
	snprintf(other, sizeof other, "errno %d", errno);
	return other;
}

static void open_device(const char *bdf)
{
	char link[512], path[600];
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		die("reading the device's iommu_group link");
	link[n] = 0;
	const char *group_name = strrchr(link, '/');
	group_name = group_name ? group_name + 1 : link;

	int container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0)
		die("opening /dev/vfio/vfio");
	if (ioctl(container, VFIO_GET_API_VERSION) != 0)
		die("VFIO_GET_API_VERSION");
	snprintf(path, sizeof path, "/dev/vfio/%s", group_name);
	int group = open(path, O_RDWR);
	if (group < 0)
		die("opening the group");
	struct group_status status = { .argsz = sizeof status };
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) || !(status.flags & 1))
		die("the group is not viable");
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container))
		die("VFIO_GROUP_SET_CONTAINER");
	int type = ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1
			   ? VFIO_TYPE1v2_IOMMU
			   : VFIO_TYPE1_IOMMU;
	if (ioctl(container, VFIO_SET_IOMMU, type))
		die("VFIO_SET_IOMMU");
	dev_fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (dev_fd < 0)
		die("VFIO_GROUP_GET_DEVICE_FD");
	struct region_info cfg = { .argsz = sizeof cfg, .index = CONFIG_REGION };
	if (ioctl(dev_fd, VFIO_DEVICE_GET_REGION_INFO, &cfg))
		die("the config region's info");
	cfg_off = cfg.offset;
	cfg_size = cfg.size;
}

static uint32_t cfg_read(uint32_t at, int len)
{
	uint32_t v = 0;
	if (pread(dev_fd, &v, len, cfg_off + at) != len)
		die("reading config space");
	return v;
}

static void cfg_write(uint32_t at, uint32_t v, int len)
{
	if (pwrite(dev_fd, &v, len, cfg_off + at) != len)
		die("writing config space");
}

/* VFIO_DEVICE_SET_IRQS with `len` bytes of data after the header. */
static int set_irqs(uint32_t index, uint32_t flags, uint32_t start, uint32_t count,
		    const void *data, size_t len)
{
	uint8_t buf[64] = { 0 };
	uint32_t head[5] = { (uint32_t)(20 + len), flags, index, start, count };
	memcpy(buf, head, sizeof head);
	memcpy(buf + 20, data, len);
	return ioctl(dev_fd, VFIO_DEVICE_SET_IRQS, buf);
}

static int msix_eventfds(uint32_t start, const int *fds, uint32_t n)
{
	return set_irqs(MSIX_INDEX, DATA_EVENTFD | ACTION_TRIGGER, start, n, fds, 4 * n);
}

static int msix_off(void)
{
	return set_irqs(MSIX_INDEX, DATA_NONE | ACTION_TRIGGER, 0, 0, NULL, 0);
}

/* How many times `efd` was signalled since the last call (non-blocking). */
static uint64_t signals(int efd)
{
	uint64_t n = 0;
	if (read(efd, &n, sizeof n) != sizeof n)
		return 0;
	return n;
}

static uint32_t msix_cap(void)
{
	uint32_t at = cfg_read(0x34, 1) & 0xfc;
	for (int hops = 0; at && hops < 48; hops++) {
		uint32_t head = cfg_read(at, 2);
		if ((head & 0xff) == 0x11)
			return at;
		at = (head >> 8) & 0xfc;
	}
	return 0;
}

static const char *on_off(uint32_t msix)
{
	return (cfg_read(msix + 2, 2) & 0x8000) ? "msix on" : "msix off";
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: vfio_rules DDDD:BB:DD.F\n");
		return 2;
	}
	open_device(argv[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	uint32_t command = cfg_read(COMMAND, 2);
	printf("bus master after open: %s\n", command & BUS_MASTER ? "on" : "off");
	cfg_write(COMMAND, command | BUS_MASTER, 2);
	printf("command write of bus master: %s\n",
	       cfg_read(COMMAND, 2) & BUS_MASTER ? "takes effect" : "dropped");
	uint32_t past = 0;
	ssize_t got = pread(dev_fd, &past, 4, cfg_off + cfg_size);
	printf("config read past its size: %s\n", result(got == 4 ? 0 : -1));

	uint32_t msix = msix_cap();
	if (!msix) {
		fprintf(stderr, "vfio_rules: the function has no MSI-X capability\n");
		return 1;
	}
	uint32_t table_size = (cfg_read(msix + 2, 2) & 0x7ff) + 1;
	struct irq_info info = { .argsz = sizeof info, .index = MSIX_INDEX };
	if (ioctl(dev_fd, VFIO_DEVICE_GET_IRQ_INFO, &info))
		die("VFIO_DEVICE_GET_IRQ_INFO");
	printf("msix irq info: count %s table, noresize %s\n",
	       info.count == table_size ? "=" : "!=",
	       info.flags & IRQ_INFO_NORESIZE ? "yes" : "no");

	int efd[4];
	for (int i = 0; i < 4; i++)
		if ((efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			die("eventfd");

	int rc = msix_off();
	printf("DATA_NONE count 0 while msix is off: %s\n", result(rc));
	printf("eventfds at start = table size, count 0: %s\n",
	       result(set_irqs(MSIX_INDEX, DATA_EVENTFD | ACTION_TRIGGER, table_size, 0, NULL, 0)));
	printf("loopback while msix is off: %s\n",
	       result(set_irqs(MSIX_INDEX, DATA_NONE | ACTION_TRIGGER, 0, 1, NULL, 0)));
	rc = msix_eventfds(0, efd, 2);
	printf("msix with 2 eventfds: %s, %s\n", result(rc), on_off(msix));
	rc = msix_eventfds(0, efd, 0);
	printf("eventfd block of count 0: %s, %s\n", result(rc), on_off(msix));
	printf("start = table size, count 0, msix on: %s\n",
	       result(set_irqs(MSIX_INDEX, DATA_NONE | ACTION_TRIGGER, table_size, 0, NULL, 0)));
	rc = set_irqs(MSIX_INDEX, DATA_NONE | ACTION_TRIGGER, 0, 2, NULL, 0);
	uint64_t s0 = signals(efd[0]), s1 = signals(efd[1]);
	printf("loopback DATA_NONE on 2 vectors: %s, signals %llu %llu, %s\n", result(rc),
	       (unsigned long long)s0, (unsigned long long)s1, on_off(msix));
	uint8_t bools[2] = { 0, 1 };
	rc = set_irqs(MSIX_INDEX, DATA_BOOL | ACTION_TRIGGER, 0, 2, bools, 2);
	s0 = signals(efd[0]);
	s1 = signals(efd[1]);
	printf("loopback DATA_BOOL {0,1}: %s, signals %llu %llu\n", result(rc),
	       (unsigned long long)s0, (unsigned long long)s1);
	printf("growing the block to 4 vectors: %s\n", result(msix_eventfds(0, efd, 4)));

	int req = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	printf("request notifier DATA_NONE without a trigger: %s\n",
	       result(set_irqs(REQ_INDEX, DATA_NONE | ACTION_TRIGGER, 0, 1, NULL, 0)));
	rc = set_irqs(REQ_INDEX, DATA_EVENTFD | ACTION_TRIGGER, 0, 1, &req, 4);
	printf("request notifier: %s", result(rc));
	rc = set_irqs(REQ_INDEX, DATA_NONE | ACTION_TRIGGER, 0, 1, NULL, 0);
	printf(", loopback %s, signals %llu\n", result(rc), (unsigned long long)signals(req));

	/* Vector Control across a re-enable: tags written (through the mapped table) while MSI-X
	 * is off, then one vector enabled again. */
	rc = msix_off();
	printf("msix off: %s, %s\n", result(rc), on_off(msix));
	uint32_t table = cfg_read(msix + 4, 4);
	struct region_info bar = { .argsz = sizeof bar, .index = table & 7 };
	if (ioctl(dev_fd, VFIO_DEVICE_GET_REGION_INFO, &bar))
		die("the MSI-X table BAR's region info");
	volatile uint32_t *map = NULL;
	if (bar.flags & REGION_FLAG_MMAP) {
		void *m = mmap(NULL, bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev_fd,
			       bar.offset);
		map = m == MAP_FAILED ? NULL : m;
	}
	if (!map) {
		printf("vector control across a re-enable: table not mappable\n");
	} else {
		volatile uint32_t *vc = map + (table & ~7u) / 4 + 3;
		vc[0] = 0x00420001; /* vector 0: tag 0x42, masked */
		vc[4] = 0x00430001; /* vector 1: tag 0x43, masked */
		/* What the device keeps of those writes (a device without TPH may drop the tag
		 * bits): the kernel's answer is printed relative to it. A config read first, so
		 * an emulation that hands mapped writes to the device at the next VFIO call (as
		 * `tphctl emulate` does) shows the device's value, as hardware does at once. */
		(void)cfg_read(COMMAND, 2);
		uint32_t held = vc[0];
		rc = msix_eventfds(0, efd, 1);
		uint32_t v0 = vc[0], v1 = vc[4];
		printf("vector control across a re-enable of vector 0: %s, vector 0 %s, "
		       "vector 1 0x%08x\n",
		       result(rc), v0 == (held & ~1u) ? "as held, unmasked" : "changed", v1);
		msix_off();
	}
	close(dev_fd);
	printf("closed\n");
	return 0;
}
