//! The ground under the TPH calls under `tphctl emulate`, checked the way real programs meet
//! it: C programs compiled here with the system `cc` (`tests/data/emulate/`) and shell
//! commands read the device regions, map BARs, map DMA and read `/sys`, and what they print
//! is compared with mainline's answers (region info, `vfio_pci_bar_rw`, type1's rules and
//! errno, the sysfs formats) and with the in-process model (MSI-X table state).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tph_kernel::{Host, HostOptions};

use common::{stderr, stdout, tests_dir, tphctl_stdin};

/// The NIC whose 2048-vector MSI-X table (and the TPH table in it) lives in BAR 0.
const NIC: &str = "0000:01:00.0";

/// A test that cannot run here: skipped with the reason, but a failure under CI.
fn cannot_run(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot run under CI: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// `tphctl emulate ARGS`; `None` (said why) when this machine lacks what the harness needs.
fn emulate(args: &[&str]) -> Option<Output> {
    let mut full = vec!["emulate"];
    full.extend_from_slice(args);
    let out = tphctl_stdin(&full, b"");
    let err = stderr(&out);
    if out.status.code() == Some(2)
        && (err.contains("does not offer seccomp") || err.contains("private mount namespace"))
    {
        cannot_run(&err);
        return None;
    }
    Some(out)
}

/// `tests/data/emulate/<name>.c` compiled with `cc` into `dir`.
fn compile(name: &str, dir: &Path) -> Option<PathBuf> {
    let src = tests_dir("data/emulate").join(format!("{name}.c"));
    let exe = dir.join(name);
    let run = Command::new("cc")
        .args(["-std=c11", "-D_DEFAULT_SOURCE", "-O1", "-Wall", "-Wextra"])
        .args(["-Werror", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .output();
    match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cannot_run("no C compiler `cc` on this machine");
            None
        }
        r => {
            let r = r.unwrap();
            assert!(r.status.success(), "cc {name}.c: {}", stderr(&r));
            Some(exe)
        }
    }
}

/// The Vector Control dwords of vectors 0..6 of `bdf` on a fresh host: after the first open,
/// then after MSI-X is enabled with 4 vectors (what the in-process model holds).
fn vector_controls(bdf: &str) -> (String, String) {
    let host = Host::with_default_machine(HostOptions::default());
    let dev = host.take_over(bdf.parse().unwrap()).unwrap();
    let fd = dev.open().unwrap();
    let line = |dev: &tph_kernel::vfio::VfioDevice| {
        dev.with_hardware(|f| f.peek_vector_controls())
            .iter()
            .take(6)
            .map(|v| format!(" {v:08x}"))
            .collect::<String>()
    };
    let opened = line(&dev);
    fd.set_irqs(4).unwrap();
    (opened, line(&dev))
}

#[test]
fn emulate_regions_read_map_and_write_as_mainline_vfio_pci() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("regions", dir.path()) else {
        return;
    };
    let trace = dir.path().join("trace.txt");
    let args = [
        "--emulated",
        "--trace",
        trace.to_str().unwrap(),
        "--",
        exe.to_str().unwrap(),
        NIC,
    ];
    let Some(out) = emulate(&args) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let (opened, enabled) = vector_controls(NIC);
    // Region info as vfio_pci_ioctl_get_region_info gives it (READ|WRITE|MMAP|CAPS on the
    // MSI-X table's BAR, with VFIO_REGION_INFO_CAP_MSIX_MAPPABLE; a short argsz gets the size
    // it needs and no capability); the table reads as 0xff and drops writes; a read at the
    // BAR's end is EINVAL and one across it is cut; the mapping shows the device's table.
    let want = format!(
        "config flags 0x3 size 0x1000 offset 0x70000000000\n\
         bar0 flags 0xf size 0x10000 offset 0 cap_offset 32: cap 3 version 1 next 0\n\
         bar0 with argsz 32: argsz 40 flags 0xf cap_offset 0\n\
         bar1 flags 0 size 0\n\
         rom flags 0 size 0\n\
         vga: -1 EINVAL\n\
         pread table: ff ff ff ff ff ff ff ff\n\
         pwrite then pread at 0x100: 0x64636261\n\
         pwrite into the table: 4\n\
         pread at the end: -1 EINVAL\n\
         pread across the end: 4\n\
         mapped 0x100: 0x64636261\n\
         vector control after open:{opened}\n\
         vector control after SET_IRQS 4:{enabled}\n\
         vector 5 data through the mapping: 0x1234\n"
    );
    assert_eq!(stdout(&out), want);
    let trace = std::fs::read_to_string(trace).unwrap();
    // The write through the mapping reached the device's table (the pwrite of 0 into vector
    // 0's Vector Control did not: the mapping showed it still masked after).
    assert!(
        trace.contains("0000:01:00.0 msix wr vec 5 +0x8 <- 0x1234: 0x0 -> 0x1234"),
        "{trace}"
    );
}

#[test]
fn emulate_mmap_of_the_device_fd_follows_vfio_pci_core_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("mmap_rules", dir.path()) else {
        return;
    };
    let Some(out) = emulate(&["--emulated", "--", exe.to_str().unwrap(), NIC]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // What Debian's 6.1 and 6.12 answered on a QEMU NVMe controller bound to vfio-pci
    // (guest_emulate_parity.rs checks the two sides against each other on every run):
    // MAP_SHARED only, BARs only, within the page-aligned BAR, the MSI-X table's page allowed.
    let want = "the MSI-X BAR, shared: 0 -\n\
                the MSI-X BAR, read only: 0 -\n\
                the MSI-X BAR, private: -1 EINVAL\n\
                the page of the MSI-X table: 0 -\n\
                the last page: 0 -\n\
                one page past the end: -1 EINVAL\n\
                the BAR and one page more: -1 EINVAL\n\
                not page aligned: -1 EINVAL\n\
                a BAR the function does not implement: -1 EINVAL\n\
                the ROM region: -1 EINVAL\n\
                the config region: -1 EINVAL\n\
                the VGA region: -1 EINVAL\n\
                region 9: -1 EINVAL\n";
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_dma_mapping_follows_type1_rules_and_errno() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("dma", dir.path()) else {
        return;
    };
    let args = [
        "--emulated",
        "--",
        exe.to_str().unwrap(),
        NIC,
        "0000:02:00.0",
    ];
    let Some(out) = emulate(&args) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // Mainline vfio_iommu_type1.c: GET_INFO's page sizes and capability chain (migration,
    // DMA available, IOVA ranges: the emulated VT-d IOMMU with its interrupt window), the
    // checks of vfio_dma_do_map and vfio_dma_do_unmap in their order, with their errno (on
    // failure UNMAP_DMA leaves the argument as it was).
    let info = |avail: u32| {
        format!(
            "info: flags 0x3 pgsizes 0x40201000 argsz needed 120 cap_offset 0\n  \
             cap 2 version 1 pgsize 0x1000 max_dirty_bitmap_size 0x10000000\n  \
             cap 3 version 1 avail {avail}\n  \
             cap 1 version 1 [0, 0xfedfffff] [0xfef00000, 0xffffffffffff]\n"
        )
    };
    let want = "map before VFIO_SET_IOMMU: -1 EINVAL\n".to_string()
        + &info(65535)
        + "map 64 KiB at iova 0x100000: 0 -\n\
           map the same again: -1 EEXIST\n\
           map overlapping its end: -1 EEXIST\n\
           map read only, after it: 0 -\n\
           map vaddr not page aligned: -1 EINVAL\n\
           map iova not page aligned: -1 EINVAL\n\
           map size 0: -1 EINVAL\n\
           map no READ or WRITE: -1 EINVAL\n\
           map unknown flag: -1 EINVAL\n\
           map in the interrupt window: -1 EINVAL\n\
           map above 48 bits: -1 EINVAL\n\
           map memory not mapped: -1 EFAULT\n\
           map VADDR with READ: -1 EINVAL\n\
           map VADDR of a live mapping: -1 EINVAL\n\
           map VADDR of nothing: -1 ENOENT\n\
           unmap inside a mapping: -1 EINVAL size 0x1000\n\
           unmap where nothing is: 0 - size 0\n\
           unmap size 0: -1 EINVAL size 0\n\
           unmap ALL with an iova: -1 EINVAL size 0\n\
           unmap exactly the first: 0 - size 0x10000\n\
           unmap around the second: 0 - size 0x1000\n\
           mapped 64 MiB in 16384 pages\n"
        + &info(65535 - 16384)
        + "unmap ALL: 0 - size 0x4000000\n"
        // The original type1: an unmap from inside a mapping unmaps nothing and succeeds, one
        // that covers a mapping's first IOVA unmaps all of it (vfio_dma_do_unmap's v1 rules).
        + "type1 (v1):\n\
           map 64 KiB at iova 0x100000: 0 -\n\
           map 64 KiB at iova 0x200000: 0 -\n\
           unmap inside the first: 0 - size 0\n\
           unmap from the first's start, 4 KiB: 0 - size 0x10000\n\
           unmap across the second's start: 0 - size 0x10000\n";
    assert_eq!(stdout(&out), want);
}

/// `CPUS` of this process (`Cpus_allowed_list`), as a list of numbers.
fn allowed_cpus() -> Vec<u32> {
    tph_emulate::emulate::allowed_cpus().unwrap()
}

#[test]
fn emulate_sysfs_shows_each_function_in_the_kernels_formats() {
    let script = "d=/sys/bus/pci/devices/0000:01:00.0; \
                  for f in vendor device subsystem_vendor subsystem_device class revision \
                  numa_node; do echo $f $(cat $d/$f); done; \
                  cat $d/resource; wc -c < $d/config; \
                  readlink $d/driver; readlink $d/iommu_group; \
                  ls /sys/bus/pci/devices | tr '\\n' ' '; echo; \
                  ls /sys/bus/pci/drivers/vfio-pci | tr '\\n' ' '; echo; \
                  ls /sys/module | tr '\\n' ' '; echo; \
                  cat /sys/module/vfio_iommu_type1/parameters/dma_entry_limit; \
                  test -e /sys/bus/pci/devices/0000:00:01.0/driver || echo root port unbound; \
                  cat /sys/bus/pci/devices/0000:00:01.0/class";
    let Some(out) = emulate(&["--emulated", "--", "sh", "-c", script]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // The NIC: vendor 0x1ab0, device 0x1000, class 0x020000 (Ethernet), BAR 0 of 64 KiB
    // holding its MSI-X table; 13 resource lines as pci-sysfs.c prints them.
    let zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    let want = "vendor 0x1ab0\ndevice 0x1000\nsubsystem_vendor 0x0000\n\
                subsystem_device 0x0000\nclass 0x020000\nrevision 0x00\nnuma_node -1\n"
        .to_string()
        + "0x0000101000000000 0x000010100000ffff 0x0000000000040200\n"
        + &zero.repeat(12)
        + "4096\n\
           ../../../../bus/pci/drivers/vfio-pci\n\
           ../../../../kernel/iommu_groups/2\n\
           0000:00:00.0 0000:00:01.0 0000:00:02.0 0000:00:03.0 0000:00:04.0 0000:00:05.0 \
           0000:00:06.0 0000:01:00.0 0000:02:00.0 0000:03:00.0 0000:04:00.0 \n\
           0000:00:05.0 0000:01:00.0 0000:02:00.0 0000:03:00.0 0000:04:00.0 bind module \
           new_id remove_id uevent unbind \n\
           vfio vfio_iommu_type1 vfio_pci \n\
           65535\n\
           root port unbound\n\
           0x060400\n";
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_cpus_default_to_those_the_program_may_run_on() {
    let script = "cd /sys/devices/system/cpu; cat possible present online; \
                  for c in cpu*; do echo $c $(cat $c/online 2>/dev/null || echo -) \
                  $(cat $c/topology/core_id 2>/dev/null || echo -) \
                  $(cat $c/topology/physical_package_id 2>/dev/null || echo -); done";
    // Under `taskset` with the highest CPU this process may use: CPUs 0..=it present, only it
    // online (and only it with a topology).
    let cpus = allowed_cpus();
    let last = *cpus.last().unwrap();
    let tphctl = env!("CARGO_BIN_EXE_tphctl");
    let run = Command::new("taskset")
        .args([
            "-c",
            &last.to_string(),
            tphctl,
            "emulate",
            "--emulated",
            "--",
        ])
        .args(["sh", "-c", script])
        .output();
    let out = match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return cannot_run("no taskset (util-linux)");
        }
        r => r.unwrap(),
    };
    if stderr(&out).contains("does not offer seccomp") {
        return cannot_run(&stderr(&out));
    }
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let range = if last == 0 {
        "0".to_string()
    } else {
        format!("0-{last}")
    };
    let mut want = format!("{range}\n{range}\n{last}\n");
    let mut names: Vec<u32> = (0..=last).collect();
    names.sort_by_key(|n| format!("cpu{n}")); // the shell's glob order
    for n in names {
        let online = match (n == 0, n == last) {
            (true, _) => "-",
            (false, true) => "1",
            (false, false) => "0",
        };
        let topo = if n == last {
            format!("{n} 0")
        } else {
            "- -".to_string()
        };
        want += &format!("cpu{n} {online} {topo}\n");
    }
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_bind_all_binds_the_function_without_tph_too() {
    let script = "ls /sys/bus/pci/drivers/vfio-pci | grep :; ls /dev/vfio | tr '\\n' ' '";
    let Some(out) = emulate(&["--emulated", "--bind", "all", "--", "sh", "-c", script]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // The default machine's endpoints: the five with TPH and the RCiEP 00:06.0 without.
    let want = "0000:00:05.0\n0000:00:06.0\n0000:01:00.0\n0000:02:00.0\n0000:03:00.0\n\
                0000:04:00.0\n1 2 3 4 5 6 vfio ";
    assert_eq!(stdout(&out), want);
}

/// What `dpdk_style.c` prints for its TPH part, from the same steps made in-process with the
/// client on a host like the emulated one: the capability as the revision reports it, Control
/// after enabling IV mode, each queue's Vector Control with its tag after steering queue `i`
/// to `lcores[i]`, Control after disabling.
fn expected_tph(revision: tph_client::Revision, lcores: &[u32]) -> String {
    use tph_client::{Mode, Steer, TphDevice};
    use tph_kernel::KernelAbi;
    let abi = match revision {
        tph_client::Revision::Feature => KernelAbi::Feature,
        tph_client::Revision::V7 => KernelAbi::V7,
        other => panic!("no emulated kernel for {other:?}"),
    };
    let opts = HostOptions::new()
        .with_abi(abi)
        .with_unsafe_ds(true)
        .with_cpus(lcores.last().unwrap() + 1);
    let host = Host::with_default_machine(opts);
    let backend = tph_emu::EmulatedBackend::take_over(&host, NIC.parse().unwrap()).unwrap();
    let device = backend.device().clone();
    // The capability as each revision's caller sees it: v7 GET_CAP's modes byte (IV 1, DS 2);
    // the feature revision's caller reads the TPH Capability register's mode bits.
    let fd = device.open().unwrap();
    let tph =
        tph_regs::tph::TphRequester::find(&device.with_hardware(|f| f.config_bytes().to_vec()))
            .unwrap()
            .unwrap();
    let modes = match abi {
        KernelAbi::V7 => {
            let mut arg = tph_client::abi::encode_get_cap();
            fd.ioctl_bytes(tph_client::abi::VFIO_DEVICE_PCI_TPH, &mut arg)
                .unwrap();
            u32::from(arg[8])
        }
        KernelAbi::Feature => {
            let mut cap = [0u8; 4];
            fd.config_read(u64::from(tph.offset) + 4, &mut cap).unwrap();
            u32::from_le_bytes(cap) & 7
        }
        other => panic!("no capability read for {other:?}"),
    };
    fd.close();
    let mut want = format!("tph: modes {modes:#x} table {}\n", tph.cap.table_size);
    let mut dev = TphDevice::with_revision(backend, revision).unwrap();
    let irqs = tph_testkit::enable_msix(&mut dev, lcores.len() as u32).unwrap();
    dev.enable(Mode::Iv).unwrap();
    want += &format!(
        "tph: control 0x{:08x}\n",
        device.snapshot().control.unwrap()
    );
    let steer: Vec<Steer> = (0..)
        .zip(lcores)
        .map(|(index, &cpu)| Steer::new(index, cpu))
        .collect();
    dev.set_entries(&steer).unwrap();
    let vcs = device.with_hardware(|f| f.peek_vector_controls());
    for (i, cpu) in lcores.iter().enumerate() {
        want += &format!(
            "queue {i} -> lcore {cpu}: vector control 0x{:08x}, tag 0x{:04x}\n",
            vcs[i],
            vcs[i] >> 16
        );
    }
    dev.disable().unwrap();
    drop(irqs);
    want + &format!(
        "tph: disabled, control 0x{:08x}\n",
        device.snapshot().control.unwrap()
    )
}

/// Runs `dpdk_style.c` on the NIC under `tphctl emulate --kernel-abi ABI --unsafe-ds-mode`
/// (with `cdev`: `--cdev`, the driver opening the device cdev and mapping DMA in an iommufd
/// IOAS) and compares every line with what a real kernel (and, for the TPH part, the
/// in-process model) answers.
fn dpdk_style(abi: &str, revision: tph_client::Revision, cdev: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("dpdk_style", dir.path()) else {
        return;
    };
    let mut args = vec!["--emulated", "--kernel-abi", abi, "--unsafe-ds-mode"];
    if cdev {
        args.push("--cdev");
    }
    args.extend(["--", exe.to_str().unwrap(), NIC, abi]);
    if cdev {
        args.push("cdev");
    }
    let Some(out) = emulate(&args) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let lcores = allowed_cpus();
    let list = {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string()
    };
    let mut want = format!("lcores online: {list}\n");
    for c in &lcores {
        want += &format!("lcore {c}: core {c} socket 0, thread pinned: yes\n");
    }
    want += "module vfio: loaded\nmodule vfio_pci: loaded\nmodule vfio_iommu_type1: loaded\n\
             0000:01:00.0: BAR 0 memory, 65536 bytes\n\
             0000:01:00.0: vendor 0x1ab0 device 0x1000 class 0x020000 numa -1 driver vfio-pci\n\
             scan: 11 functions, 5 bound to vfio-pci\n";
    // The NIC is the second bound function (after 00:05.0): its cdev is vfio1.
    want += if cdev {
        "opened /dev/vfio/devices/vfio1 through its cdev, bound to iommufd, IOAS attached\n"
    } else {
        "iommu: page sizes 0x40201000\n"
    };
    want += "dma: 4096 pages of 4 KiB mapped, IOVA = VA\n\
             device: flags 0x3, 9 regions, 5 irqs\n\
             bar 0: 65536 bytes mapped, MSI-X table mappable\n\
             reset, bus master on\n";
    want += &format!("msix: 2048 vectors, {} queues wired\n", lcores.len());
    // The request notifier (VFIO_PCI_REQ_IRQ_INDEX): set, as mainline sets it.
    want += "request notifier: ok\n";
    want += &expected_tph(revision, &lcores);
    want += "dma: 16777216 bytes unmapped\nclosed\n";
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_dpdk_style_driver_runs_its_whole_tph_sequence_on_v7() {
    dpdk_style("v7", tph_client::Revision::V7, false);
}

#[test]
fn emulate_dpdk_style_driver_runs_its_whole_tph_sequence_on_the_feature_revision() {
    dpdk_style("feature", tph_client::Revision::Feature, false);
}

#[test]
fn emulate_dpdk_style_driver_through_the_cdev_and_iommufd_on_v7() {
    dpdk_style("v7", tph_client::Revision::V7, true);
}

#[test]
fn emulate_iommufd_ioas_mapping_follows_iommufd_rules_and_errno() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("iommufd", dir.path()) else {
        return;
    };
    let Some(out) = emulate(&["--emulated", "--cdev", "--", exe.to_str().unwrap()]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // iommufd_ioas_map / iopt_check_iova / iopt_alloc_iova / iopt_unmap_iova_range: EEXIST on
    // overlap, EINVAL for alignment, length 0, no access or a reserved range, EOPNOTSUPP for
    // an unknown flag, EFAULT for memory not there, ENOENT for another IOAS; the kernel's
    // IOVA is the lowest hole past the first page, aligned as the user address; an unmap
    // that would split an area, or finds none, is ENOENT.
    let want = "map 64 KiB at 0x100000: 0 - iova 0x100000\n\
                map the same again: -1 EEXIST\n\
                map overlapping its end: -1 EEXIST\n\
                map iova not page aligned: -1 EINVAL\n\
                map length 0: -1 EINVAL\n\
                map neither READABLE nor WRITEABLE: -1 EINVAL\n\
                map unknown flag: -1 EOPNOTSUPP\n\
                map in the interrupt window: -1 EINVAL\n\
                map memory not mapped: -1 EFAULT\n\
                map an IOAS that does not exist: -1 ENOENT\n\
                map 4 KiB, the kernel choosing the iova: 0 - iova 0x1000\n\
                map 64 KiB, the kernel choosing the iova: 0 - iova 0x10000\n\
                unmap half of the first area: -1 ENOENT\n\
                unmap where nothing is: -1 ENOENT\n\
                unmap the first area: 0 - length 0x10000\n\
                unmap everything: 0 - length 0x11000\n";
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_shows_this_machines_huge_page_pools() {
    let script = "ls /sys/kernel/mm/hugepages 2>/dev/null || echo absent";
    let Some(out) = emulate(&["--emulated", "--", "sh", "-c", script]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let want = match std::fs::read_dir("/sys/kernel/mm/hugepages") {
        Ok(dir) => {
            let mut names: Vec<String> = dir
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names.iter().map(|n| format!("{n}\n")).collect()
        }
        Err(_) => "absent\n".to_string(),
    };
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_bind_all_lets_a_driver_meet_the_kernels_enodev_on_a_function_without_tph() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("v7_ioctl", dir.path()) else {
        return;
    };
    // 00:06.0 has MSI-X but no TPH Requester capability: the v7 ioctl's GET_CAP is ENODEV,
    // the "this device has no TPH" answer a driver has to handle.
    let args = [
        "--emulated",
        "--bind",
        "all",
        "--",
        exe.to_str().unwrap(),
        "0000:00:06.0",
        "1",
    ];
    let Some(out) = emulate(&args) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(&out));
    assert_eq!(stderr(&out), "GET_CAP (errno 19: No such device)\n");
}
