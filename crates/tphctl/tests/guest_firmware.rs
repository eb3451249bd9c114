//! `tphctl list/show --sysfs` and `st-map` on the real sysfs and ACPI tables of Debian's 6.1
//! and 6.12 kernels in QEMU (q35, 4 CPUs, no IOMMU), against the guest's own `lspci` and
//! `acpiexec` on the very tables the guest kernel loaded. An SSDT (`data/guest/tph-dsm.asl`,
//! compiled with the real `iasl`, passed with `-acpitable`) adds the TPH `_DSM` to q35's host
//! bridge `\_SB.PCI0`; the CPU-to-UID map comes from the guest's real MADT. One boot per kernel.

mod guest;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tph_guest::{Guest, GuestRun, Series};

/// The SSDT, compiled once per test binary.
fn ssdt() -> PathBuf {
    static AML: OnceLock<PathBuf> = OnceLock::new();
    AML.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/guest/tph-dsm.asl");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-ssdt");
        std::fs::create_dir_all(&dir).expect("ssdt dir");
        let out = Command::new("iasl")
            .arg("-p")
            .arg(dir.join("tph-dsm"))
            .arg(&src)
            .output()
            .expect("iasl (Debian package acpica-tools)");
        assert!(out.status.success(), "iasl failed: {out:?}");
        dir.join("tph-dsm.aml")
    })
    .clone()
}

fn firmware_guest(series: Series) -> Guest {
    let mut g = guest::guest(series);
    g.cpus = 4;
    g.modules = vec!["vfio_pci", "vfio_iommu_type1", "virtio_pci"];
    g.binaries
        .push(("/usr/bin/acpiexec".into(), "/usr/bin/acpiexec".into()));
    g.qemu_args = guest::devices(&[
        "pcie-root-port,id=rp1,chassis=1,slot=1",
        "virtio-net-pci,bus=rp1,romfile=",
    ]);
    g.qemu_args.push("-acpitable".into());
    g.qemu_args.push(format!("file={}", ssdt().display()));
    g.setup = "modprobe virtio_pci; modprobe vfio_pci; modprobe vfio_iommu_type1\n".into();
    g.scenario(
        "no_iommu",
        "d=/sys/bus/pci/devices/0000:01:00.0\n\
         echo vfio-pci > $d/driver_override\n\
         [ -e $d/driver ] && echo 0000:01:00.0 > $d/driver/unbind\n\
         echo 0000:01:00.0 > /sys/bus/pci/drivers_probe\n\
         tphctl session --vfio 01:00.0 --kernel-abi v7 < /dev/null",
    );
    g.scenario("sysfs_root", SYSFS);
    g.scenario(
        "sysfs_user",
        &format!("su -s /bin/sh user -c '{}'", SYSFS.replace('\'', "")),
    );
    g.scenario("st_map", ST_MAP);
    g
}

/// Every function lspci lists, and what `tphctl list` and `show` say of each.
const SYSFS: &str = r#"lspci -D 2>/dev/null | cut -d" " -f1 > /tmp/bdfs.$$
echo "lspci functions: $(wc -l < /tmp/bdfs.$$)"
echo "lspci TPH: $(lspci -vvv 2>/dev/null | grep -c "Transaction Processing Hints")"
echo "lspci access denied: $(lspci -vvv 2>/dev/null | grep -c "access denied")"
tphctl list --sysfs > /tmp/list.$$ 2>&1
echo "list status $?"
grep -v "tphctl: warning" /tmp/list.$$
echo "list warnings: $(tphctl list --sysfs 2>&1 | grep -c "tphctl: warning")"
for b in $(cat /tmp/bdfs.$$); do tphctl show $b --sysfs > /dev/null 2>&1; echo "show $b status $?"; done
"#;

/// The tag map from tphctl, from acpiexec on the guest's own DSDT and SSDTs, and the kernel's
/// own CPU-to-UID map.
const ST_MAP: &str = r#"tphctl st-map --json > /tmp/map.json; echo "st-map status $?"
tr -d ' \n' < /tmp/map.json | sed 's/},{/}\n{/g'; echo
mkdir /tmp/t; cp /sys/firmware/acpi/tables/DSDT /sys/firmware/acpi/tables/SSDT* /tmp/t/
ls /tmp/t
for u in 0 1 2 3; do
    acpiexec -b "evaluate TPHQ $u" /tmp/t/* 2>&1 | grep -A1 "Evaluation of" | tail -n1 | sed "s/^/acpiexec $u: /"
done
echo "kernel present cpus: $(cat /sys/devices/system/cpu/present)"
for a in /sys/bus/acpi/devices/LNXCPU:*; do echo "kernel $(basename $(readlink $a/physical_node)) is $(cat $a/path)"; done
"#;

static RUNS: guest::Runs = OnceLock::new();

fn run(series: Series) -> Option<&'static GuestRun> {
    guest::shared(&RUNS, series, firmware_guest)
}

fn no_iommu_says_so_and_names_the_boot_option(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("no_iommu").status(2);
    o.line(
        "tphctl: session --vfio 01:00.0: device 0000:01:00.0 is in no IOMMU group: the kernel \
         runs without an IOMMU (fix: enable VT-d or AMD-Vi in firmware and boot with \
         intel_iommu=on or amd_iommu=on)",
    );
}

/// `name: N` from a line of the output.
fn count(o: &tph_guest::Checked<'_>, name: &str) -> usize {
    let line = o.line(&format!("{name}: "));
    let n = line.rsplit(' ').next().unwrap_or("");
    n.parse()
        .unwrap_or_else(|_| o.fail(&format!("no count in {line:?}")))
}

fn list_show_sysfs_as_root_agree_with_lspci(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("sysfs_root");
    let n = count(&o, "lspci functions");
    assert!(n > 0, "{}", o.output());
    // lspci finds no TPH capability (QEMU emulates none), and neither does tphctl, reading the
    // same number of functions, each of which `show` says has none.
    assert_eq!(count(&o, "lspci TPH"), 0);
    assert_eq!(count(&o, "lspci access denied"), 0);
    assert_eq!(count(&o, "list warnings"), 0);
    o.line(&format!(
        "tphctl: no function with a TPH Requester capability ({n} functions read; reading sysfs at /sys)"
    ));
    o.line("list status 1");
    assert_eq!(
        o.output().matches(" status 1\n").count(),
        n + 1,
        "{}",
        o.output()
    );
}

fn list_show_sysfs_as_user_cannot_rule_out_tph_like_lspci(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("sysfs_user");
    let n = count(&o, "lspci functions");
    // A plain user reads 64 bytes of each function: lspci prints `<access denied>` for the
    // capabilities of every function that has any, and tphctl does not claim "no TPH".
    assert_eq!(count(&o, "lspci TPH"), 0);
    assert!(count(&o, "lspci access denied") > 0, "{}", o.output());
    // Exactly the functions lspci cannot decode are unknown (those without a capability list
    // are decided by the first 64 bytes): one line for all of them, the fix named, exit 2
    // (unknown is not "absent"); `show` of an unknown function exits 2, of the others 1.
    let denied = count(&o, "lspci access denied");
    assert_eq!(count(&o, "list warnings"), 0);
    let prefix = match denied {
        1 => "tphctl: TPH unknown for function ".to_string(),
        k => format!("tphctl: TPH unknown for {k} functions (first "),
    };
    let told: Vec<&str> = o
        .output()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert_eq!(told.len(), 1, "{}", o.output());
    assert!(
        told[0].contains("the capability list was not read") && told[0].contains("run as root"),
        "{}",
        told[0]
    );
    o.lacks("no function with a TPH Requester capability");
    o.line("list status 2");
    assert_eq!(
        o.output().matches(" status 2\n").count(),
        denied + 1,
        "{}",
        o.output()
    );
    assert_eq!(
        o.output().matches(" status 1\n").count(),
        n - denied,
        "{}",
        o.output()
    );
}

fn acpiexec_value(line: &str) -> Option<u64> {
    let hex = line.split(" = ").nth(1)?.split("//").next()?;
    let bytes: Vec<u8> = hex
        .split_whitespace()
        .filter(|t| !t.ends_with(':'))
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn st_map_on_real_tables_matches_acpiexec_and_the_madt(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("st_map").status(0);
    o.line("st-map status 0");
    o.line("kernel present cpus: 0-3");
    let mut uids = Vec::new();
    for cpu in 0..4 {
        // Each CPU the kernel brought up (and linked to an ACPI processor object) has a row;
        // its UID comes from the guest's MADT, read by tphctl.
        o.line(&format!("kernel cpu{cpu} is "));
        let row = o.line(&format!("\"cpu\":{cpu},"));
        let uid: u32 = row
            .strip_prefix("{\"uid\":")
            .or_else(|| row.strip_prefix("[{\"uid\":"))
            .and_then(|r| r.split(',').next())
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| o.fail(&format!("no uid in {row}")));
        let ours = row
            .split("\"st_info\":\"0x")
            .nth(1)
            .and_then(|r| u64::from_str_radix(&r[..16], 16).ok())
            .unwrap_or_else(|| o.fail(&format!("no st_info in {row}")));
        let theirs = acpiexec_value(o.line(&format!("acpiexec {uid}: ")))
            .unwrap_or_else(|| o.fail("acpiexec printed no buffer"));
        assert_eq!(
            ours, theirs,
            "uid {uid}: tphctl {ours:#018x}, acpiexec {theirs:#018x}"
        );
        // Every tag valid, as the SSDT says.
        assert!(
            row.contains("\"st_valid\":true,\"xst_valid\":true"),
            "{row}"
        );
        uids.push(uid);
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 4, "one UID per CPU: {}", o.output());
}

#[test]
fn acpiexec_buffer_line_parses_little_endian() {
    let v =
        acpiexec_value("  [Buffer] Length 08 =     0000: 03 40 00 01 03 E0 00 F0    // .@......");
    assert_eq!(v, Some(0xF000_E003_0100_4003));
}

tph_guest::on_each_kernel!(
    no_iommu_says_so_and_names_the_boot_option,
    list_show_sysfs_as_root_agree_with_lspci,
    list_show_sysfs_as_user_cannot_rule_out_tph_like_lspci,
    st_map_on_real_tables_matches_acpiexec_and_the_madt,
);
