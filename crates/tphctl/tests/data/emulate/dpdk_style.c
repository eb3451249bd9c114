/* A userspace NIC driver that opens its device the way DPDK's EAL and SPDK do, then steers its
 * receive queues' interrupts with TPH:
 *  1. CPUs: /sys/devices/system/cpu/online, each lcore's topology, one thread pinned per lcore;
 *  2. the vfio modules in /sys/module;
 *  3. the PCI scan: every /sys/bus/pci/devices entry's IDs, class, NUMA node, resource lines
 *     and driver, the target bound to vfio-pci;
 *  4. container and group (type1), or with `cdev` the device cdev bound to an iommufd IOAS;
 *     DMA: a 16 MiB region mapped in 4 KiB pages with IOVA = VA (MAP_DMA, or IOAS_MAP);
 *  5. the device: its info, config space, every BAR's region info, BARs mapped with mmap
 *     (the MSI-X table's BAR too when it is MSIX_MAPPABLE), reset, Bus Master on;
 *  6. interrupts: MSI-X eventfds for one queue per lcore, the request notifier (REQ index);
 *  7. TPH in IV mode (the table in MSI-X): v7 VFIO_DEVICE_PCI_TPH or the feature revision
 *     (Control written through the config region, VFIO_DEVICE_FEATURE TPH_ST), each queue's
 *     vector steered to its lcore, the tags read back through the BAR mapping;
 *  8. teardown in the reverse order.
 * Usage: dpdk_style BDF v7|feature [cdev]. Prints one line per step; exits 0 when all
 * succeeded. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "vfio_open.h"

#define VFIO_DEVICE_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 7)
#define VFIO_DEVICE_GET_IRQ_INFO _IO(VFIO_TYPE, VFIO_BASE + 9)
#define VFIO_DEVICE_RESET _IO(VFIO_TYPE, VFIO_BASE + 11)
#define VFIO_IOMMU_GET_INFO _IO(VFIO_TYPE, VFIO_BASE + 12)
#define VFIO_IOMMU_MAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 13)
#define VFIO_IOMMU_UNMAP_DMA _IO(VFIO_TYPE, VFIO_BASE + 14)
#define VFIO_DEVICE_FEATURE _IO(VFIO_TYPE, VFIO_BASE + 17)
#define VFIO_DEVICE_PCI_TPH _IO(VFIO_TYPE, VFIO_BASE + 22)
#define VFIO_REGION_INFO_FLAG_MMAP (1 << 2)
#define VFIO_REGION_INFO_FLAG_CAPS (1 << 3)
#define VFIO_REGION_INFO_CAP_MSIX_MAPPABLE 3
#define VFIO_IRQ_SET_DATA_NONE (1 << 0)
#define VFIO_IRQ_SET_DATA_EVENTFD (1 << 2)
#define VFIO_IRQ_SET_ACTION_TRIGGER (1 << 5)
#define VFIO_PCI_MSIX_IRQ_INDEX 2
#define VFIO_PCI_REQ_IRQ_INDEX 4
#define VFIO_DMA_UNMAP_FLAG_ALL (1 << 1)
#define PCI_CAP_ID_MSIX 0x11
#define PCI_EXT_CAP_ID_TPH 0x17
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#define IOMMU_DESTROY _IO(VFIO_TYPE, 0x80)
#define IOMMU_IOAS_ALLOC _IO(VFIO_TYPE, 0x81)
#define IOMMU_IOAS_MAP _IO(VFIO_TYPE, 0x85)
#define IOMMU_IOAS_UNMAP _IO(VFIO_TYPE, 0x86)
#define IOMMU_IOAS_MAP_FIXED_IOVA (1 << 0)
#define IOMMU_IOAS_MAP_WRITEABLE (1 << 1)
#define IOMMU_IOAS_MAP_READABLE (1 << 2)
#define MAX_LCORES 64
#define DMA_BYTES (16u << 20)

struct vfio_device_info {
	uint32_t argsz, flags, num_regions, num_irqs, cap_offset, pad;
};
struct vfio_irq_info {
	uint32_t argsz, flags, index, count;
};
struct vfio_info_cap_header {
	uint16_t id, version;
	uint32_t next;
};
struct vfio_dma_map {
	uint32_t argsz, flags;
	uint64_t vaddr, iova, size;
};
struct vfio_dma_unmap {
	uint32_t argsz, flags;
	uint64_t iova, size;
};
struct iommu_ioas_alloc {
	uint32_t size, flags, out_ioas_id;
};
struct vfio_device_bind_iommufd {
	uint32_t argsz, flags;
	int32_t iommufd;
	uint32_t out_devid;
};
struct vfio_device_attach_iommufd_pt {
	uint32_t argsz, flags, pt_id;
};
struct iommu_ioas_map {
	uint32_t size, flags, ioas_id, reserved;
	uint64_t user_va, length, iova;
};
struct iommu_ioas_unmap {
	uint32_t size, ioas_id;
	uint64_t iova, length;
};
struct iommu_destroy {
	uint32_t size, id;
};

/* v7: VFIO_DEVICE_PCI_TPH (the series' include/uapi/linux/vfio.h). */
struct v7_entry {
	uint32_t cpu;
	uint8_t mem_type, reserved0;
	uint16_t index, st, reserved1;
};
struct v7_op {
	uint32_t argsz, op;
	union {
		struct { uint8_t modes, r0; uint16_t table_size; uint32_t r1; } cap;
		struct { uint8_t mode, r[7]; } ctrl;
		struct { uint32_t count, r; struct v7_entry ents[]; } st;
	};
};
#define V7_GET_CAP 0
#define V7_ENABLE 1
#define V7_DISABLE 2
#define V7_SET_ST 4
#define V7_MODE_IV 1

/* The feature revision: VFIO_DEVICE_FEATURE_TPH_ST. */
struct vfio_device_feature {
	uint32_t argsz, flags;
	uint8_t data[];
};
struct feature_tph_st {
	uint32_t flags;
	uint16_t index, count;
	uint32_t data[];
};
#define FEATURE_SET (1 << 17)
#define FEATURE_TPH_ST 13

static int lcores[MAX_LCORES], n_lcores;
/* cdev mode: the iommufd and the IOAS the device is attached to. */
static int cdev_mode;
static uint32_t ioas_id;

static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, (int)len, f))
		FAIL("reading %s", path);
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

/* "0-3,5" into lcores[]. */
static void parse_cpu_list(const char *s)
{
	while (*s && n_lcores < MAX_LCORES) {
		char *end;
		long a = strtol(s, &end, 10), b = a;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long c = a; c <= b && n_lcores < MAX_LCORES; c++)
			lcores[n_lcores++] = (int)c;
		s = *end == ',' ? end + 1 : end;
		if (end == s && *s != 0)
			break;
	}
}

static void *pinned(void *arg)
{
	int cpu = *(int *)arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		return (void *)1;
	return sched_getcpu() == cpu ? NULL : (void *)2;
}

static void cpus(void)
{
	char line[256], path[128];
	read_line("/sys/devices/system/cpu/online", line, sizeof(line));
	parse_cpu_list(line);
	printf("lcores online: %s\n", line);
	for (int i = 0; i < n_lcores; i++) {
		char core[16], socket[16];
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/core_id",
			 lcores[i]);
		read_line(path, core, sizeof(core));
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", lcores[i]);
		read_line(path, socket, sizeof(socket));
		pthread_t t;
		void *ret = (void *)3;
		if (pthread_create(&t, NULL, pinned, &lcores[i]) != 0 || pthread_join(t, &ret) != 0)
			FAIL("lcore thread");
		printf("lcore %d: core %s socket %s, thread pinned: %s\n", lcores[i], core, socket,
		       ret ? "no" : "yes");
	}
}

static void modules(void)
{
	const char *mods[] = { "vfio", "vfio_pci", "vfio_iommu_type1" };
	for (int i = 0; i < 3; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
		printf("module %s: %s\n", mods[i], access(path, F_OK) == 0 ? "loaded" : "absent");
	}
}

/* The scan of /sys/bus/pci/devices: counts, and the target's attributes. */
static void scan(const char *target)
{
	DIR *dir = opendir("/sys/bus/pci/devices");
	if (!dir)
		FAIL("opendir /sys/bus/pci/devices");
	int total = 0, vfio = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512], link[256], vendor[16], device[16], class_[16], numa[16];
		total++;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		const char *driver = "none";
		if (n > 0) {
			link[n] = 0;
			driver = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		}
		vfio += strcmp(driver, "vfio-pci") == 0;
		if (strcmp(e->d_name, target) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		read_line(path, vendor, sizeof(vendor));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", e->d_name);
		read_line(path, device, sizeof(device));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/class", e->d_name);
		read_line(path, class_, sizeof(class_));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", e->d_name);
		read_line(path, numa, sizeof(numa));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			FAIL("opening %s", path);
		int mem_bars = 0;
		for (int i = 0; i < 6; i++) {
			unsigned long long start, end, flags;
			if (fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3)
				FAIL("parsing %s", path);
			if (flags & 0x200) { /* IORESOURCE_MEM */
				printf("%s: BAR %d memory, %llu bytes\n", target, i, end - start + 1);
				mem_bars++;
			}
		}
		fclose(f);
		printf("%s: vendor %s device %s class %s numa %s driver %s\n", target, vendor, device,
		       class_, numa, driver);
	}
	closedir(dir);
	printf("scan: %d functions, %d bound to vfio-pci\n", total, vfio);
}

/* The device through its cdev (the vfio-dev entry of sysfs names it), bound to a new iommufd
 * and attached to a fresh IOAS, and the config region's place in the device fd. */
static struct vfio_dev cdev_open(const char *bdf)
{
	struct vfio_dev d = { .group = -1 };
	char path[512];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	DIR *dir = opendir(path);
	if (!dir)
		FAIL("opendir %s", path);
	struct dirent *e;
	char name[256] = "";
	while ((e = readdir(dir)))
		if (strncmp(e->d_name, "vfio", 4) == 0)
			snprintf(name, sizeof(name), "%s", e->d_name);
	closedir(dir);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	d.fd = open(path, O_RDWR);
	if (d.fd < 0)
		FAIL("open %s", path);
	d.container = open("/dev/iommu", O_RDWR);
	if (d.container < 0)
		FAIL("open /dev/iommu");
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	if (ioctl(d.container, IOMMU_IOAS_ALLOC, &alloc) != 0)
		FAIL("IOMMU_IOAS_ALLOC");
	ioas_id = alloc.out_ioas_id;
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = d.container };
	if (ioctl(d.fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) != 0)
		FAIL("VFIO_DEVICE_BIND_IOMMUFD");
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = ioas_id };
	if (ioctl(d.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) != 0)
		FAIL("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	struct vfio_region_info reg = { .argsz = sizeof(reg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	if (ioctl(d.fd, VFIO_DEVICE_GET_REGION_INFO, &reg) != 0)
		FAIL("VFIO_DEVICE_GET_REGION_INFO config");
	d.config = reg.offset;
	printf("opened %s through its cdev, bound to iommufd, IOAS attached\n", path);
	return d;
}

/* One DMA mapping of `len` bytes at `va`, IOVA = VA: MAP_DMA, or IOAS_MAP in cdev mode. */
static int dma_map(int fd, char *va, uint64_t len)
{
	if (cdev_mode) {
		struct iommu_ioas_map m = { .size = sizeof(m), .ioas_id = ioas_id,
					    .flags = IOMMU_IOAS_MAP_FIXED_IOVA |
						     IOMMU_IOAS_MAP_WRITEABLE |
						     IOMMU_IOAS_MAP_READABLE,
					    .user_va = (uint64_t)(uintptr_t)va, .length = len,
					    .iova = (uint64_t)(uintptr_t)va };
		return ioctl(fd, IOMMU_IOAS_MAP, &m);
	}
	struct vfio_dma_map m = { .argsz = sizeof(m), .flags = 3, .vaddr = (uint64_t)(uintptr_t)va,
				  .iova = (uint64_t)(uintptr_t)va, .size = len };
	return ioctl(fd, VFIO_IOMMU_MAP_DMA, &m);
}

/* Every DMA mapping gone: UNMAP_DMA with ALL, or IOAS_UNMAP of the whole space. */
static uint64_t dma_unmap_all(int fd)
{
	if (cdev_mode) {
		struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = ioas_id, .iova = 0,
					      .length = UINT64_MAX };
		if (ioctl(fd, IOMMU_IOAS_UNMAP, &u) != 0)
			FAIL("IOMMU_IOAS_UNMAP");
		return u.length;
	}
	struct vfio_dma_unmap u = { .argsz = sizeof(u), .flags = VFIO_DMA_UNMAP_FLAG_ALL };
	if (ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &u) != 0)
		FAIL("VFIO_IOMMU_UNMAP_DMA");
	return u.size;
}

/* One DMA mapping per 4 KiB page of a fresh region, IOVA = VA (DPDK's iova-mode va). */
static char *dma_region(int container)
{
	char *mem = mmap(NULL, DMA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		FAIL("mmap of the DMA region");
	unsigned pages = 0;
	for (size_t off = 0; off < DMA_BYTES; off += 4096, pages++) {
		if (dma_map(container, mem + off, 4096) != 0)
			FAIL("DMA mapping of page %u", pages);
	}
	printf("dma: %u pages of 4 KiB mapped, IOVA = VA\n", pages);
	return mem;
}

static uint32_t cap_offset(const struct vfio_dev *d, uint8_t id)
{
	uint32_t ptr = cfg_read32(d, 0x34) & 0xff;
	for (int steps = 0; ptr && steps < 48; steps++) {
		uint32_t hdr = cfg_read32(d, ptr);
		if ((hdr & 0xff) == id)
			return ptr;
		ptr = (hdr >> 8) & 0xfc;
	}
	return 0;
}

static int set_irqs(int fd, uint32_t index, uint32_t flags, uint32_t count, const int *fds)
{
	size_t argsz = 20 + 4 * count;
	uint32_t *a = calloc(1, argsz);
	if (!a)
		FAIL("calloc");
	a[0] = (uint32_t)argsz;
	a[1] = flags | VFIO_IRQ_SET_ACTION_TRIGGER;
	a[2] = index;
	a[4] = count;
	if (fds)
		memcpy(a + 5, fds, 4 * count);
	errno = 0;
	int rc = ioctl(fd, VFIO_DEVICE_SET_IRQS, a);
	free(a);
	return rc;
}

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "ok";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "other";
	}
}

/* Steers queue i's vector i to lcores[i]: the v7 ioctl or the feature revision. */
static void steer(const struct vfio_dev *d, int feature, uint32_t tph)
{
	if (!feature) {
		struct v7_op cap = { .argsz = sizeof(cap), .op = V7_GET_CAP };
		if (ioctl(d->fd, VFIO_DEVICE_PCI_TPH, &cap) != 0)
			FAIL("v7 GET_CAP");
		printf("tph: modes %#x table %u\n", cap.cap.modes, cap.cap.table_size);
		struct v7_op en = { .argsz = sizeof(en), .op = V7_ENABLE };
		en.ctrl.mode = V7_MODE_IV;
		if (ioctl(d->fd, VFIO_DEVICE_PCI_TPH, &en) != 0)
			FAIL("v7 ENABLE IV");
		size_t argsz = sizeof(struct v7_op) + n_lcores * sizeof(struct v7_entry);
		struct v7_op *set = calloc(1, argsz);
		if (!set)
			FAIL("calloc");
		set->argsz = (uint32_t)argsz;
		set->op = V7_SET_ST;
		set->st.count = (uint32_t)n_lcores;
		for (int i = 0; i < n_lcores; i++) {
			set->st.ents[i].cpu = (uint32_t)lcores[i];
			set->st.ents[i].index = (uint16_t)i;
		}
		if (ioctl(d->fd, VFIO_DEVICE_PCI_TPH, set) != 0)
			FAIL("v7 SET_ST");
		free(set);
	} else {
		uint32_t cap = cfg_read32(d, tph + 4);
		printf("tph: modes %#x table %u\n", cap & 7, ((cap >> 16) & 0x7ff) + 1);
		uint32_t iv = 1; /* ST Mode Select alone: the kernel picks the requester type */
		if (pwrite(d->fd, &iv, 4, d->config + tph + 8) != 4)
			FAIL("writing TPH Control");
		size_t argsz = sizeof(struct vfio_device_feature) + sizeof(struct feature_tph_st) +
			       4 * n_lcores;
		struct vfio_device_feature *f = calloc(1, argsz);
		if (!f)
			FAIL("calloc");
		struct feature_tph_st *st = (void *)f->data;
		f->argsz = (uint32_t)argsz;
		f->flags = FEATURE_TPH_ST | FEATURE_SET;
		st->index = 0;
		st->count = (uint16_t)n_lcores;
		for (int i = 0; i < n_lcores; i++)
			st->data[i] = (uint32_t)lcores[i];
		if (ioctl(d->fd, VFIO_DEVICE_FEATURE, f) != 0)
			FAIL("VFIO_DEVICE_FEATURE SET TPH_ST");
		free(f);
	}
	printf("tph: control 0x%08x\n", cfg_read32(d, tph + 8));
}

static void unsteer(const struct vfio_dev *d, int feature, uint32_t tph)
{
	if (!feature) {
		struct v7_op dis = { .argsz = sizeof(dis), .op = V7_DISABLE };
		if (ioctl(d->fd, VFIO_DEVICE_PCI_TPH, &dis) != 0)
			FAIL("v7 DISABLE");
	} else {
		uint32_t zero = 0;
		if (pwrite(d->fd, &zero, 4, d->config + tph + 8) != 4)
			FAIL("writing TPH Control 0");
	}
	printf("tph: disabled, control 0x%08x\n", cfg_read32(d, tph + 8));
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || (strcmp(argv[2], "v7") && strcmp(argv[2], "feature")) ||
	    (argc == 4 && strcmp(argv[3], "cdev"))) {
		fprintf(stderr, "usage: %s BDF v7|feature [cdev]\n", argv[0]);
		return 2;
	}
	cdev_mode = argc == 4;
	const char *bdf = argv[1];
	int feature = strcmp(argv[2], "feature") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);

	cpus();
	modules();
	scan(bdf);

	struct vfio_dev d;
	if (cdev_mode) {
		d = cdev_open(bdf);
	} else {
		d = vfio_open(bdf); /* container, group, type1, device fd */
		struct { uint32_t argsz, flags; uint64_t pgsizes; } iommu = { .argsz = 16 };
		if (ioctl(d.container, VFIO_IOMMU_GET_INFO, &iommu) != 0)
			FAIL("VFIO_IOMMU_GET_INFO");
		printf("iommu: page sizes %#llx\n", (unsigned long long)iommu.pgsizes);
	}
	char *dma = dma_region(d.container);

	struct vfio_device_info info = { .argsz = sizeof(info) };
	if (ioctl(d.fd, VFIO_DEVICE_GET_INFO, &info) != 0)
		FAIL("VFIO_DEVICE_GET_INFO");
	printf("device: flags %#x, %u regions, %u irqs\n", info.flags, info.num_regions,
	       info.num_irqs);
	uint32_t msix = cap_offset(&d, PCI_CAP_ID_MSIX);
	if (!msix)
		FAIL("no MSI-X capability");
	uint32_t table = cfg_read32(&d, msix + 4);
	unsigned table_bar = table & 7;
	uint32_t table_off = table & ~7u;
	void *bars[6] = { 0 };
	uint64_t bar_size[6] = { 0 };
	for (unsigned i = 0; i < 6; i++) {
		uint64_t buf[8] = { 0 };
		struct vfio_region_info *r = (void *)buf;
		r->argsz = sizeof(buf);
		r->index = i;
		if (ioctl(d.fd, VFIO_DEVICE_GET_REGION_INFO, r) != 0)
			FAIL("VFIO_DEVICE_GET_REGION_INFO %u", i);
		if (!r->size)
			continue;
		int mappable = 0;
		for (uint32_t at = (r->flags & VFIO_REGION_INFO_FLAG_CAPS) ? r->cap_offset : 0; at;) {
			const struct vfio_info_cap_header *h = (const void *)((char *)buf + at);
			mappable |= h->id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE;
			at = h->next;
		}
		if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP) || (i == table_bar && !mappable)) {
			printf("bar %u: %llu bytes, not mapped\n", i, (unsigned long long)r->size);
			continue;
		}
		bars[i] = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd,
			       (off_t)r->offset);
		if (bars[i] == MAP_FAILED)
			FAIL("mmap of BAR %u", i);
		bar_size[i] = r->size;
		printf("bar %u: %llu bytes mapped%s\n", i, (unsigned long long)r->size,
		       i == table_bar ? ", MSI-X table mappable" : "");
	}
	if (!bars[table_bar])
		FAIL("the MSI-X table's BAR is not mapped");
	if (ioctl(d.fd, VFIO_DEVICE_RESET) != 0)
		FAIL("VFIO_DEVICE_RESET");
	uint32_t cmd = cfg_read32(&d, 4) & 0xffff;
	uint16_t master = (uint16_t)(cmd | 0x4);
	if (pwrite(d.fd, &master, 2, d.config + 4) != 2)
		FAIL("setting Bus Master");
	printf("reset, bus master on\n");

	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	if (ioctl(d.fd, VFIO_DEVICE_GET_IRQ_INFO, &irq) != 0)
		FAIL("VFIO_DEVICE_GET_IRQ_INFO");
	int efd[MAX_LCORES];
	for (int i = 0; i < n_lcores; i++)
		if ((efd[i] = eventfd(0, EFD_CLOEXEC)) < 0)
			FAIL("eventfd");
	if (set_irqs(d.fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD, n_lcores, efd))
		FAIL("VFIO_DEVICE_SET_IRQS MSI-X");
	printf("msix: %u vectors, %d queues wired\n", irq.count, n_lcores);
	int req = eventfd(0, EFD_CLOEXEC);
	int rc = set_irqs(d.fd, VFIO_PCI_REQ_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD, 1, &req);
	printf("request notifier: %s\n", rc ? err_name(errno) : "ok");

	uint32_t tph = find_ext_cap(&d, PCI_EXT_CAP_ID_TPH);
	if (!tph)
		FAIL("no TPH capability");
	steer(&d, feature, tph);
	volatile uint32_t *vt = (volatile uint32_t *)((char *)bars[table_bar] + table_off);
	for (int i = 0; i < n_lcores; i++)
		printf("queue %d -> lcore %d: vector control 0x%08x, tag 0x%04x\n", i, lcores[i],
		       vt[4 * i + 3], vt[4 * i + 3] >> 16);

	unsteer(&d, feature, tph);
	if (rc == 0 && set_irqs(d.fd, VFIO_PCI_REQ_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE, 0, NULL))
		FAIL("disabling the request notifier");
	if (set_irqs(d.fd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE, 0, NULL))
		FAIL("disabling MSI-X");
	printf("dma: %llu bytes unmapped\n", (unsigned long long)dma_unmap_all(d.container));
	munmap(dma, DMA_BYTES);
	for (int i = 0; i < 6; i++)
		if (bars[i])
			munmap(bars[i], bar_size[i]);
	if (cdev_mode) {
		struct iommu_destroy destroy = { .size = sizeof(destroy), .id = ioas_id };
		close(d.fd); /* the device first: it is detached as it is released */
		if (ioctl(d.container, IOMMU_DESTROY, &destroy) != 0)
			FAIL("IOMMU_DESTROY");
		close(d.container);
	} else {
		vfio_close(&d);
	}
	printf("closed\n");
	return 0;
}
