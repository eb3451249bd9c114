//! The real 7.3 TPH core against the model's devices: `tphctl serve --vfio-user` serves
//! functions of the emulated default machine, QEMU 11.1 (the rig's) shows them to the rig's
//! kernel, and the guest test module (`crates/tph-guest/module`) calls the kernel's own
//! `pcie_enable_tph`, `pcie_tph_get_cpu_st`, `pcie_tph_set_st_entry`, `pcie_disable_tph` and
//! `pci_reset_function` on them, one line per call with its return value. The firmware is an
//! SSDT with the host bridge `_DSM` (`data/guest/tph-dsm.asl`: for processor UID u, VM tag
//! 0x40+u, extended 0x100+u; PM tag 0xE0-u, extended 0xF000+u).
//!
//! One boot serves four functions:
//! - 01:00.0 (served 01:00.0: ST table in MSI-X, 2048 entries, extended requester) behind rp1;
//! - 02:00.0 (served 02:00.0: ST table in the capability, 16 entries, extended) behind rp2;
//! - 03:00.0 (served 04:00.0: capability table of 8, 8-bit requester only) behind rp3;
//! - 00:05.0 (served 00:05.0) on the root bus: QEMU shows it as an integrated endpoint.
//!
//! Every expected value below is what `drivers/pci/tph.c` of 7.3 answers for that device, worked
//! out by reading it (the comments say how); the serve traces show the register writes reached
//! the device. A second boot with `pci=notph` finds every enable refused.

mod guest;

use guest::BIND;

use tph_guest::{rig, Rig};

/// Writes one command to the test module and prints its lines.
const T: &str =
    "t() { echo \"$*\" > /sys/kernel/debug/tph_test/ctl && cat /sys/kernel/debug/tph_test/ctl; }\n\
     comp() { echo $1 > /sys/module/tph_rootport/parameters/completer; }\n";

/// Boots the rig with its four served functions (`guest::RIG_FUNCTIONS`), running
/// `scenarios` with the module's shell functions.
fn boot(rig: &Rig, append: &str, iommu: bool, scenarios: &[(&str, String)]) -> guest::RigBoot {
    let scenarios: Vec<(&str, String)> = scenarios
        .iter()
        .map(|(name, script)| (*name, format!("{T}{script}")))
        .collect();
    guest::rig_boot(
        rig,
        "serve",
        append,
        iommu,
        &guest::RIG_FUNCTIONS,
        &scenarios,
    )
}

/// The trace lines that change TPH state, reset the device or touch the MSI-X table.
fn tph_trace(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|l| {
            l.contains("TPH Control")
                || l.contains(": ST[")
                || l.starts_with("reset")
                || l.contains("function level reset")
                || l.starts_with("msix")
                || l.starts_with("irqs")
        })
        .collect()
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// `lspci -vvv` of each function, then `tphctl show --sysfs --lspci` of it, then `tphctl list
/// --sysfs`, all in the guest on the live devices.
const PARITY: &str = r#"for b in 01:00.0 02:00.0 03:00.0 00:05.0; do
    echo "@lspci $b"; lspci -vvv -s $b 2>/dev/null
    echo "@tphctl $b"; tphctl show $b --sysfs --lspci; echo "status $?"
done
echo "@list"; tphctl list --sysfs; echo "status $?"
"#;

/// The TPH capability's lines in one function's `lspci -vvv` text: its header line and the
/// lines indented deeper.
fn lspci_tph_block(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches('\t').len();
        match depth {
            None if line.contains("Transaction Processing Hints") => {
                depth = Some(indent);
                out.push(line);
            }
            Some(d) if indent > d => out.push(line),
            Some(_) => break,
            None => {}
        }
    }
    out
}

#[test]
fn the_real_core_drives_the_served_functions() {
    let Some(rig) = rig::for_test("guest_serve") else {
        return;
    };
    let b = boot(
        &rig,
        "",
        false,
        &[
            (
                "msix_table",
                "t dev 0000:01:00.0\nt state\nt enable_device\n\
                 t set_st 0 0x11\nt get_st_all\n\
                 t enable 3\nt enable 7\nt enable 1\nt enable 1\nt state\nt get_st_all\n\
                 t set_st 0 0x42\nt state\n\
                 t msix 4\nt enable 1\n\
                 t set_st 0 0x42\nt set_st 3 0x43\nt msix_ctrl 0\nt msix_ctrl 3\n\
                 t reset\nt state\nt msix_ctrl 0\nt msix_ctrl 3\n\
                 t set_st 4 0x44\nt state\n\
                 t enable 2\nt set_st 64 1\nt state\n\
                 t enable 2\nt disable\nt state\nt disable\nt msix 0"
                    .into(),
            ),
            (
                "cap_table",
                "t dev 0000:02:00.0\nt enable_device\n\
                 comp ext\nt enable 1\nt state\nt get_st_all\n\
                 t set_st 0 0x101\nt set_st 15 0xf001\nt cfg 0x10c\nt cfg 0x128\n\
                 t set_st 16 1\nt state\nt cfg 0x108\n\
                 t enable 2\nt set_st 1 0x101\nt cfg 0x10c\n\
                 t reset\nt state\nt cfg 0x108\nt cfg 0x10c\n\
                 t disable\nt cfg 0x108\n\
                 comp none\nt enable 1\ncomp tph\nt enable 1\nt state\nt disable"
                    .into(),
            ),
            (
                "eight_bit",
                "t dev 0000:03:00.0\ncomp ext\nt enable 1\nt state\nt get_st 0 vm\nt get_st 1 pm\n\
                 t disable\ncomp tph"
                    .into(),
            ),
            (
                "rciep",
                "t dev 0000:00:05.0\ncomp none\nt enable 1\nt state\nt get_st 0 vm\nt disable\n\
                 comp tph"
                    .into(),
            ),
            ("parity", PARITY.into()),
        ],
    );
    let run = &b.run;
    assert!(run.finished, "{}", run.console);

    // 01:00.0, ST table in MSI-X (2048 vectors), extended requester, completer "tph":
    // - before enable: set_st refuses (EINVAL, TPH off); get_st answers 0 with tag 0 (the
    //   requester type is still 0, so tph_extract_tag picks nothing);
    // - modes 3 and 7 are not supported (EINVAL); IV enables with requester type 1 (min of the
    //   device's extended 3 and the root port's 1); again: EBUSY;
    // - 8-bit firmware tags: VM 0x40+uid, PM 0xE0-uid;
    // - set_st without MSI-X enabled: ENXIO from pci_msix_write_tph_tag, and the core turns
    //   TPH off; with 4 vectors, entries 0 and 3 are written into QEMU's copy of the table
    //   (Vector Control bits 31:16, mask bit still set); a reset (FLR) keeps TPH on and the
    //   tags (the core restores Control, the MSI-X code the Vector Control words it caches);
    //   entries 4 and 64 (not allocated) are ENXIO and turn TPH off again;
    //   disable twice is harmless.
    let off = "state = 0 tph_cap=0x100 enabled=0 mode=0 req_type=0 loc=2 size=0";
    let zero_tags = "get_st 0 vm = 0 tag=0x0\nget_st 0 pm = 0 tag=0x0\n\
                     get_st 1 vm = 0 tag=0x0\nget_st 1 pm = 0 tag=0x0";
    assert_eq!(
        run.outcome("msix_table").status(0).output(),
        format!(
            "dev 0000:01:00.0 = 0 type=0 tph_cap=0x100\n{off}\nenable_device = 0\n\
             set_st 0 0x11 = -22\n{zero_tags}\n\
             enable 3 = -22\nenable 7 = -22\nenable 1 = 0\nenable 1 = -16\n\
             state = 0 tph_cap=0x100 enabled=1 mode=1 req_type=1 loc=2 size=0\n\
             get_st 0 vm = 0 tag=0x40\nget_st 0 pm = 0 tag=0xe0\n\
             get_st 1 vm = 0 tag=0x41\nget_st 1 pm = 0 tag=0xdf\n\
             set_st 0 0x42 = -6\n{off}\n\
             msix 4 = 4\nenable 1 = 0\n\
             set_st 0 0x42 = 0\nset_st 3 0x43 = 0\n\
             msix_ctrl 0 = 0 ctrl=0x00420001\nmsix_ctrl 3 = 0 ctrl=0x00430001\n\
             reset = 0\nstate = 0 tph_cap=0x100 enabled=1 mode=1 req_type=1 loc=2 size=0\n\
             msix_ctrl 0 = 0 ctrl=0x00420001\nmsix_ctrl 3 = 0 ctrl=0x00430001\n\
             set_st 4 0x44 = -6\n{off}\n\
             enable 2 = 0\nset_st 64 0x1 = -6\n{off}\n\
             enable 2 = 0\ndisable = 0\n{off}\ndisable = 0\nmsix 0 = 0\n"
        )
    );

    // 02:00.0, ST table of 16 in the capability, extended requester; completer "ext" gives
    // requester type 3 and the extended firmware tags (VM 0x100+uid, PM 0xF000+uid); entries
    // land at 0x10c + 2*index; index 16 is ENXIO and turns TPH off (entries stay). A reset
    // (FLR) clears the device; the core restores Control and every entry. Completer "none"
    // refuses (EINVAL); "tph" gives requester type 1.
    assert_eq!(
        run.outcome("cap_table").status(0).output(),
        "dev 0000:02:00.0 = 0 type=0 tph_cap=0x100\nenable_device = 0\nenable 1 = 0\n\
         state = 0 tph_cap=0x100 enabled=1 mode=1 req_type=3 loc=1 size=16\n\
         get_st 0 vm = 0 tag=0x100\nget_st 0 pm = 0 tag=0xf000\n\
         get_st 1 vm = 0 tag=0x101\nget_st 1 pm = 0 tag=0xf001\n\
         set_st 0 0x101 = 0\nset_st 15 0xf001 = 0\n\
         cfg 0x10c = 0 val=0x00000101\ncfg 0x128 = 0 val=0xf0010000\n\
         set_st 16 0x1 = -6\n\
         state = 0 tph_cap=0x100 enabled=0 mode=0 req_type=0 loc=1 size=16\n\
         cfg 0x108 = 0 val=0x00000000\n\
         enable 2 = 0\nset_st 1 0x101 = 0\ncfg 0x10c = 0 val=0x01010101\n\
         reset = 0\nstate = 0 tph_cap=0x100 enabled=1 mode=2 req_type=3 loc=1 size=16\n\
         cfg 0x108 = 0 val=0x00000302\ncfg 0x10c = 0 val=0x01010101\n\
         disable = 0\ncfg 0x108 = 0 val=0x00000000\n\
         enable 1 = -22\nenable 1 = 0\n\
         state = 0 tph_cap=0x100 enabled=1 mode=1 req_type=1 loc=1 size=16\ndisable = 0\n"
    );

    // 03:00.0 (served 04:00.0) has no extended requester: with completer "ext" the requester
    // type is still 1 and the tags are the 8-bit ones.
    assert_eq!(
        run.outcome("eight_bit").status(0).output(),
        "dev 0000:03:00.0 = 0 type=0 tph_cap=0x100\nenable 1 = 0\n\
         state = 0 tph_cap=0x100 enabled=1 mode=1 req_type=1 loc=1 size=8\n\
         get_st 0 vm = 0 tag=0x40\nget_st 1 pm = 0 tag=0xdf\ndisable = 0\n"
    );

    // 00:05.0 on the root bus is an integrated endpoint (type 9): enable skips the completer
    // check (type 3 with completer "none"), get_st finds no root port: ENODEV, tag untouched.
    assert_eq!(
        run.outcome("rciep").status(0).output(),
        "dev 0000:00:05.0 = 0 type=9 tph_cap=0x100\nenable 1 = 0\n\
         state = 0 tph_cap=0x100 enabled=1 mode=1 req_type=3 loc=1 size=8\n\
         get_st 0 vm = -19 tag=0xffff\ndisable = 0\n"
    );

    // What reached the devices. MSI-X: only TPH Control; the tags written into Vector
    // Control stayed in QEMU's copy of the table (no `msix wr` line).
    let [msix, cap, eight, rciep] = &b.servers[..] else {
        panic!("four servers")
    };
    for (name, (status, out, _)) in [
        ("msix", msix),
        ("cap", cap),
        ("8bit", eight),
        ("rciep", rciep),
    ] {
        assert_eq!(*status, Some(0), "server {name}: {out}");
    }
    let want = [
        "reset (DEVICE_RESET): function level reset",
        "cfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH",
        // set_st 0 without MSI-X: requests off, the write fails, TPH disabled.
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH -> IV off",
        "cfg  wr 0x108/4 <- 0x0: TPH Control: IV off -> NS off",
        "irqs msix 0+1: eventfds removed",
        "cfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH",
        // set_st 0 and 3 succeed: requests off, (the table write stays in QEMU), on.
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH -> IV off",
        "cfg  wr 0x108/4 <- 0x101: TPH Control: IV off -> IV TPH",
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH -> IV off",
        "cfg  wr 0x108/4 <- 0x101: TPH Control: IV off -> IV TPH",
        // reset: FLR, then the core restores Control.
        "cfg  wr 0x048/2 <- 0xa810: function level reset",
        "cfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH",
        // set_st 4 fails: off, disabled.
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH -> IV off",
        "cfg  wr 0x108/4 <- 0x0: TPH Control: IV off -> NS off",
        // enable DS, set_st 64 fails; enable DS, disable.
        "cfg  wr 0x108/4 <- 0x102: TPH Control: NS off -> DS TPH",
        "cfg  wr 0x108/4 <- 0x2: TPH Control: DS TPH -> DS off",
        "cfg  wr 0x108/4 <- 0x0: TPH Control: DS off -> NS off",
        "cfg  wr 0x108/4 <- 0x102: TPH Control: NS off -> DS TPH",
        "cfg  wr 0x108/4 <- 0x0: TPH Control: DS TPH -> NS off",
        "irqs msix 0+0: all disabled",
    ];
    assert_eq!(tph_trace(&msix.2), want, "MSI-X device trace");

    // Capability table: each entry write framed by requests off/on, the FLR, then the core's
    // restore: Control first, then all 16 entries.
    let mut want = vec![
        "reset (DEVICE_RESET): function level reset",
        "cfg  wr 0x108/4 <- 0x301: TPH Control: NS off -> IV TPH+ExtTPH",
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH+ExtTPH -> IV off",
        "cfg  wr 0x10c/2 <- 0x101: ST[0]: 0x0000 -> 0x0101",
        "cfg  wr 0x108/4 <- 0x301: TPH Control: IV off -> IV TPH+ExtTPH",
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH+ExtTPH -> IV off",
        "cfg  wr 0x12a/2 <- 0xf001: ST[15]: 0x0000 -> 0xf001",
        "cfg  wr 0x108/4 <- 0x301: TPH Control: IV off -> IV TPH+ExtTPH",
        "cfg  wr 0x108/4 <- 0x1: TPH Control: IV TPH+ExtTPH -> IV off",
        "cfg  wr 0x108/4 <- 0x0: TPH Control: IV off -> NS off",
        "cfg  wr 0x108/4 <- 0x302: TPH Control: NS off -> DS TPH+ExtTPH",
        "cfg  wr 0x108/4 <- 0x2: TPH Control: DS TPH+ExtTPH -> DS off",
        "cfg  wr 0x10e/2 <- 0x101: ST[1]: 0x0000 -> 0x0101",
        "cfg  wr 0x108/4 <- 0x302: TPH Control: DS off -> DS TPH+ExtTPH",
        "cfg  wr 0x048/2 <- 0xa810: function level reset",
        "cfg  wr 0x108/4 <- 0x302: TPH Control: NS off -> DS TPH+ExtTPH",
    ];
    let restored: Vec<String> = (0..16u32)
        .map(|i| {
            let v = match i {
                0 | 1 => 0x101,
                15 => 0xf001,
                _ => 0,
            };
            format!(
                "cfg  wr {:#05x}/2 <- {v:#x}: ST[{i}]: 0x0000 -> {v:#06x}",
                0x10c + 2 * i
            )
        })
        .collect();
    want.extend(restored.iter().map(String::as_str));
    want.extend([
        "cfg  wr 0x108/4 <- 0x0: TPH Control: DS TPH+ExtTPH -> NS off",
        "cfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH",
        "cfg  wr 0x108/4 <- 0x0: TPH Control: IV TPH -> NS off",
    ]);
    assert_eq!(tph_trace(&cap.2), want, "capability-table device trace");
    assert_eq!(
        tph_trace(&eight.2),
        [
            "reset (DEVICE_RESET): function level reset",
            "cfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH",
            "cfg  wr 0x108/4 <- 0x0: TPH Control: IV TPH -> NS off",
        ]
    );
    assert_eq!(
        tph_trace(&rciep.2),
        [
            "reset (DEVICE_RESET): function level reset",
            "cfg  wr 0x108/4 <- 0x301: TPH Control: NS off -> IV TPH+ExtTPH",
            "cfg  wr 0x108/4 <- 0x0: TPH Control: IV TPH+ExtTPH -> NS off",
        ]
    );

    // In the guest: `tphctl show --sysfs --lspci` prints exactly lspci's TPH lines, and `list`
    // sees the stand-in's completer on the root ports.
    let parity = run.outcome("parity").status(0);
    let text = parity.output();
    for bdf in ["01:00.0", "02:00.0", "03:00.0", "00:05.0"] {
        let lspci = text
            .split(&format!("@lspci {bdf}\n"))
            .nth(1)
            .and_then(|t| t.split("@tphctl").next())
            .unwrap_or_else(|| parity.fail(&format!("no lspci output for {bdf}")));
        let ours = text
            .split(&format!("@tphctl {bdf}\n"))
            .nth(1)
            .and_then(|t| t.split("\nstatus ").next())
            .unwrap_or_else(|| parity.fail(&format!("no tphctl output for {bdf}")));
        let ours = lines(ours);
        assert_eq!(ours.first().copied(), Some(bdf), "{text}");
        let block = lspci_tph_block(lspci);
        assert!(
            block.len() > 2,
            "{bdf}: lspci shows no TPH capability: {text}"
        );
        assert_eq!(ours[1..], block[..], "{bdf}: {text}");
    }
    let list = text.split("@list\n").nth(1).unwrap_or_default();
    for (bdf, completer) in [
        ("0000:00:05.0", "rciep"),
        ("0000:01:00.0", "tph"),
        ("0000:02:00.0", "tph"),
        ("0000:03:00.0", "tph"),
    ] {
        let row = list
            .lines()
            .find(|l| l.starts_with(bdf))
            .unwrap_or_else(|| parity.fail(&format!("list has no {bdf}")));
        assert_eq!(row.split_whitespace().last(), Some(completer), "{list}");
    }
}

#[test]
fn notph_refuses_every_enable() {
    let Some(rig) = rig::for_test("guest_serve notph") else {
        return;
    };
    let b = boot(
        &rig,
        "pci=notph",
        false,
        &[(
            "enable",
            "for d in 0000:01:00.0 0000:02:00.0 0000:03:00.0 0000:00:05.0; do\n\
             t dev $d > /dev/null; t enable 1; t enable 2; t state; done\n\
             dmesg | grep -c 'PCIe TPH is disabled'"
                .into(),
        )],
    );
    let refused =
        "enable 1 = -22\nenable 2 = -22\nstate = 0 tph_cap=0x100 enabled=0 mode=0 req_type=0";
    let mut want = String::new();
    for loc_size in [
        "loc=2 size=0",
        "loc=1 size=16",
        "loc=1 size=8",
        "loc=1 size=8",
    ] {
        want.push_str(&format!("{refused} {loc_size}\n"));
    }
    want.push_str("1\n");
    assert_eq!(b.run.outcome("enable").status(0).output(), want);
    for (status, out, trace) in &b.servers {
        assert_eq!(*status, Some(0), "{out}");
        assert!(!trace.contains("TPH Control"), "{trace}");
    }
}

#[test]
fn session_vfio_opens_served_functions_through_cdev_and_legacy() {
    let Some(rig) = rig::for_test("guest_serve vfio") else {
        return;
    };
    let session = |iface: &str, bdf: &str| {
        format!(
            "printf 'irqs 2\\ncap\\nshow\\n' | tphctl session --vfio {bdf} --vfio-interface {iface} \
             --kernel-abi v7 2>&1; echo \"status $?\"\n"
        )
    };
    // The rig's kernel has no interrupt remapping (nor has QEMU's vIOMMU without intremap):
    // VFIO refuses such a platform unless told (EPERM at VFIO_SET_IOMMU and
    // VFIO_DEVICE_BIND_IOMMUFD otherwise).
    let b = boot(
        &rig,
        "vfio_iommu_type1.allow_unsafe_interrupts=1 iommufd.allow_unsafe_interrupts=1",
        true,
        &[
            (
                "bind",
                format!(
                    "{BIND}bind 0000:02:00.0; bind 0000:01:00.0\n\
                     ls /dev/vfio /dev/vfio/devices; ls -l /dev/iommu | cut -c1-10\n\
                     ls /sys/bus/pci/drivers/vfio-pci"
                ),
            ),
            ("cdev", session("cdev", "02:00.0")),
            ("legacy", session("legacy", "02:00.0")),
            ("auto", session("auto", "01:00.0")),
        ],
    );
    let run = &b.run;
    assert!(run.finished, "{}", run.console);
    // vfio-pci took both functions; the cdev of each and /dev/iommu exist (iommufd).
    assert_eq!(
        run.outcome("bind").status(0).output(),
        "/dev/vfio:\n6\n7\ndevices\nvfio\n\n/dev/vfio/devices:\nvfio0\nvfio1\ncrw-rw----\n\
         0000:01:00.0\n0000:02:00.0\nbind\nmodule\nnew_id\nremove_id\nuevent\nunbind\n"
    );
    // Each path opens the device and enables two real MSI-X vectors; the TPH ioctl meets the
    // real ENOTTY (mainline has no VFIO TPH interface); `show` reads the registers through the
    // config region. The cdev path is the device cdev bound to iommufd, a real 7.3 kernel's.
    let expect = |table: &str| {
        format!(
            "> irqs 2\nok\n> cap\nerror: this kernel has no VFIO TPH interface: it answered the \
             v7 ioctl call with ENOTTY (25) (a kernel with the vfio-pci TPH series for this \
             revision is needed) (--kernel-abi picks the revision)\n> show\n\
             control: 0x00000000 (mode no_st, requester enable disabled)\n\
             st_table ({table}): all zero\n\
             tphctl: session: 1 of 3 commands failed (line 2)\nstatus 2\n"
        )
    };
    let cap_table = expect("capability, 16 entries");
    assert_eq!(run.outcome("cdev").status(0).output(), cap_table);
    assert_eq!(run.outcome("legacy").status(0).output(), cap_table);
    assert_eq!(
        run.outcome("auto").status(0).output(),
        expect("msix, 2048 entries")
    );
    // The vectors reached the served devices as eventfds: once for 01:00.0 (auto), twice for
    // 02:00.0 (cdev, then legacy).
    let sets = |trace: &str| {
        ["irqs msix 0+1: eventfds set", "irqs msix 1+1: eventfds set"]
            .map(|l| trace.lines().filter(|t| *t == l).count())
    };
    assert_eq!(sets(&b.servers[0].2), [2, 1], "{}", b.servers[0].2);
    assert_eq!(sets(&b.servers[1].2), [4, 2], "{}", b.servers[1].2);
    for (status, out, _) in &b.servers {
        assert_eq!(*status, Some(0), "{out}");
    }
}
