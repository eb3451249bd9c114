//! `tphctl session --vfio` on real kernels: Debian's 6.1 and 6.12 booted in QEMU (q35 with a
//! virtual Intel IOMMU, so IOMMU groups are real), the legacy VFIO group/container interface
//! (Debian's kernels have no iommufd, so the cdev path cannot be booted here; it stays tested
//! across the syscall boundary). One boot per kernel runs every scenario below in order.
//!
//! Topology: 01:00.0 virtio-net behind its own root port (the device a user sets up), 02:00.0
//! virtio-net left on its own driver, 03:00.0 an e1000e (the cloud kernels have no driver for
//! it), and behind a conventional PCI bridge (04:00.0) two virtio-net functions 05:01.0 and
//! 05:02.0 sharing one IOMMU group. None of these devices has a TPH capability (QEMU emulates
//! none), so every TPH call meets the kernel's real "no such interface" answer.
//!
//! Set-up mistakes are checked twice: the message must be exact, and the fix command it names,
//! cut out of the message and run in the guest, must make the next attempt open the device.

mod guest;

use guest::BIND;

use std::sync::OnceLock;

use tph_guest::{Guest, GuestRun, Series};

/// Prints a session's exit status, then runs the `(fix: ...)` command of its message and opens
/// again. `$1`: BDF, the rest: extra arguments.
const FIX_AND_RETRY: &str = r#"attempt() {
    tphctl session --vfio "$@" --kernel-abi v7 < /dev/null > /tmp/msg 2>&1
    echo "status $?"
    cat /tmp/msg
}
fix_and_retry() {
    attempt "$@"
    fix=$(sed -n 's/.*(fix: \([^)]*\)).*/\1/p' /tmp/msg)
    echo "running: $fix"
    sh -c "$fix"
    echo irqs 1 | tphctl session --vfio "$@" --kernel-abi v7 > /tmp/msg 2>&1
    echo "after the fix: status $?"
    cat /tmp/msg
}
"#;

fn vfio_guest(series: Series) -> Guest {
    let mut g = guest::guest(series);
    g.iommu = true;
    g.modules = vec!["vfio_pci", "vfio_iommu_type1", "virtio_pci"];
    g.qemu_args = guest::devices(&[
        "pcie-root-port,id=rp1,chassis=1,slot=1",
        "virtio-net-pci,bus=rp1,romfile=",
        "pcie-root-port,id=rp2,chassis=2,slot=2",
        "virtio-net-pci,bus=rp2,romfile=",
        "pcie-root-port,id=rp3,chassis=3,slot=3",
        "e1000e,bus=rp3,romfile=",
        "pcie-root-port,id=rp4,chassis=4,slot=4",
        "pcie-pci-bridge,id=pb,bus=rp4",
        "virtio-net-pci,bus=pb,addr=1,romfile=",
        "virtio-net-pci,bus=pb,addr=2,romfile=",
        // QEMU's "edu" device on the root bus: no FLR, no power management, no bridge above it
        // to reset, so the kernel has no reset method for it.
        "edu,addr=0x10",
    ]);
    // vfio-pci without vfio_iommu_type1 (busybox modprobe loads no soft dependencies): the
    // state the first real boot found; 01:00.0, 05:01.0 and 00:10.0 bound to vfio-pci.
    g.setup = format!(
        "{BIND}modprobe virtio_pci; modprobe vfio_pci\n\
         bind 0000:01:00.0\nbind 0000:05:01.0\nbind 0000:00:10.0\n"
    );
    g.scenario(
        "type1_not_loaded",
        &format!("{FIX_AND_RETRY}fix_and_retry 01:00.0"),
    );
    g.scenario(
        "probe_unknown",
        "tphctl session --vfio 01:00.0 < /dev/null; echo \"status $?\"\n\
         tphctl session --vfio 03:00.0 < /dev/null; echo \"status $?\"",
    );
    g.scenario("v7_forced", &forced_session("v7"));
    g.scenario("feature_forced", &forced_session("feature"));
    g.scenario(
        "bound_to_own_driver",
        &format!("{FIX_AND_RETRY}fix_and_retry 02:00.0"),
    );
    g.scenario(
        "bound_to_no_driver",
        &format!("{FIX_AND_RETRY}fix_and_retry 03:00.0"),
    );
    g.scenario(
        "group_not_viable",
        &format!("{FIX_AND_RETRY}fix_and_retry 05:01.0"),
    );
    g.scenario(
        "not_root",
        r#"ls -l /dev/vfio/$(basename $(readlink /sys/bus/pci/devices/0000:01:00.0/iommu_group))
su -s /bin/sh user -c 'tphctl session --vfio 01:00.0 --kernel-abi v7 < /dev/null' > /tmp/msg 2>&1
echo "status $?"
cat /tmp/msg
fix=$(sed -n 's/.*(fix: sudo \([^)]*\)).*/\1/p' /tmp/msg)
echo "running as root for user: $fix"
USER=user sh -c "$fix"
su -s /bin/sh user -c 'echo irqs 1 | tphctl session --vfio 01:00.0 --kernel-abi v7'
echo "after the fix: status $?"
"#,
    );
    g.scenario(
        "bdf_absent",
        "tphctl session --vfio 07:00.0 --kernel-abi v7 < /dev/null",
    );
    g.scenario(
        "reset_refused",
        "echo \"kernel reset methods: [$(cat /sys/bus/pci/devices/0000:00:10.0/reset_method 2>/dev/null)]\"\n\
         echo reset | tphctl session --vfio 00:10.0 --kernel-abi v7; echo \"status $?\"",
    );
    g
}

/// A session on 01:00.0 under `--kernel-abi REV` that enables two MSI-X vectors, looks at them
/// from outside while the session holds them, then asks for TPH, resets and reads config.
fn forced_session(rev: &str) -> String {
    format!(
        r#"mkfifo /tmp/in-{rev}
tphctl session --vfio 01:00.0 --kernel-abi {rev} < /tmp/in-{rev} > /tmp/out-{rev} 2>&1 &
pid=$!
exec 3> /tmp/in-{rev}
echo "irqs 2" >&3
n=0; until grep -q '^ok' /tmp/out-{rev} || [ $n -ge 200 ]; do sleep 0.1; n=$((n+1)); done
echo "vectors held: $(grep -c 'vfio-msix\[[0-9]*\](0000:01:00.0)' /proc/interrupts)"
lspci -vv -s 01:00.0 2>/dev/null | grep 'MSI-X:'
printf 'cap\nenable iv\nset-st 0=1\nreset\nshow\n' >&3
exec 3>&-
wait $pid
echo "session status $?"
cat /tmp/out-{rev}
echo "vectors after close: $(grep -c 'vfio-msix' /proc/interrupts)"
lspci -vv -s 01:00.0 2>/dev/null | grep 'MSI-X:'
echo "lspci TPH lines: $(lspci -vvv -s 01:00.0 2>/dev/null | grep -c 'Transaction Processing Hints')"
"#
    )
}

static RUNS: guest::Runs = OnceLock::new();

/// The boot of `series`, shared by this binary's tests.
fn run(series: Series) -> Option<&'static GuestRun> {
    guest::shared(&RUNS, series, vfio_guest)
}

const NO_INTERFACE_V7: &str = "error: this kernel has no VFIO TPH interface: it answered the v7 \
    ioctl call with ENOTTY (25) (a kernel with the vfio-pci TPH series for this revision is \
    needed) (--kernel-abi picks the revision)";
const NO_INTERFACE_FEATURE: &str = "error: this kernel has no VFIO TPH interface for this device: \
    VFIO_DEVICE_FEATURE 13 (TPH_ST) answered ENOTTY (25) (a kernel without the vfio-pci TPH \
    series, vfio-pci enable_unsafe_tph=0, no usable TPH capability, or a kernel that numbers the \
    feature differently)";
const NO_TPH: &str = "error: the device has no usable TPH capability (no capability, or the host \
    booted with pci=notph): ENODEV (19)";

fn type1_not_loaded_names_modprobe_and_the_fix_works(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("type1_not_loaded").status(0);
    o.line("status 2");
    o.line(
        "tphctl: session --vfio 01:00.0: the VFIO container has no IOMMU driver: \
         vfio_iommu_type1 is not loaded (fix: modprobe vfio_iommu_type1)",
    );
    o.line("running: modprobe vfio_iommu_type1");
    o.line("after the fix: status 0");
    o.line("> irqs 1");
}

fn probe_says_unknown_and_opens_nothing(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("probe_unknown").status(0);
    // 03:00.0 is not bound to vfio-pci: the same answer shows nothing was opened before it.
    for bdf in ["01:00.0", "03:00.0"] {
        o.line(&format!(
            "tphctl: session --vfio {bdf}: the kernel has no VFIO TPH interface this client can \
             use (unknown: vfio_pci has no TPH module parameter; nothing was sent) (fix: \
             --kernel-abi v7 or --kernel-abi feature, when you know the kernel has that \
             revision)"
        ));
    }
    assert_eq!(o.output().matches("status 2").count(), 2, "{}", o.output());
}

fn forced(series: Series, name: &'static str) -> tph_guest::Checked<'static> {
    let run = run(series).expect("checked by the caller");
    let o = run.outcome(name).status(0);
    // The kernel refuses the TPH calls (no released kernel has them): the session's exit status
    // says some commands failed.
    o.line("session status 2");
    // Two real vectors while the session holds them, released by its last close.
    o.line("vectors held: 2");
    o.line("MSI-X: Enable+ Count=4 Masked-");
    o.line("vectors after close: 0");
    o.line("MSI-X: Enable- Count=4 Masked-");
    // lspci finds no TPH capability in config space, and neither does the session's read.
    o.line("lspci TPH lines: 0");
    o
}

fn v7_forced_opens_enables_msix_and_reports_enotty_as_no_interface(series: Series) {
    if run(series).is_none() {
        return;
    }
    let o = forced(series, "v7_forced");
    let text = o.output();
    assert_eq!(
        text.matches(NO_INTERFACE_V7).count(),
        3,
        "cap, enable, set-st:\n{text}"
    );
    assert!(text.contains("> reset\nok\n"), "{text}");
    assert!(text.contains(&format!("> show\n{NO_TPH}\n")), "{text}");
    o.lacks("refused");
}

fn feature_forced_reads_config_and_reports_enotty_as_no_interface(series: Series) {
    if run(series).is_none() {
        return;
    }
    let o = forced(series, "feature_forced");
    let text = o.output();
    // The feature revision reads the capability from config space: none there. SET is the
    // first feature call sent, and the kernel does not know it.
    assert!(text.contains(&format!("> cap\n{NO_TPH}\n")), "{text}");
    assert!(text.contains(&format!("> enable iv\n{NO_TPH}\n")), "{text}");
    assert!(
        text.contains(&format!("> set-st 0=1\n{NO_INTERFACE_FEATURE}\n")),
        "{text}"
    );
    assert!(text.contains("> reset\nok\n"), "{text}");
    o.lacks("refused");
}

fn not_bound_fix(series: Series, name: &str, bdf: &str, driver: &str, unbind: &str) {
    let Some(run) = run(series) else { return };
    let o = run.outcome(name).status(0);
    o.line("status 2");
    let full = format!("0000:{bdf}");
    o.line(&format!(
        "tphctl: session --vfio {bdf}: device {full} is not bound to vfio-pci (driver: {driver}) \
         (fix: {unbind}echo vfio-pci > /sys/bus/pci/devices/{full}/driver_override; echo {full} \
         > /sys/bus/pci/drivers_probe)"
    ));
    o.line("after the fix: status 0");
}

fn bound_to_own_driver_names_the_rebind(series: Series) {
    let unbind = "echo 0000:02:00.0 > /sys/bus/pci/drivers/virtio-pci/unbind; ";
    not_bound_fix(
        series,
        "bound_to_own_driver",
        "02:00.0",
        "virtio-pci",
        unbind,
    );
}

fn bound_to_no_driver_names_the_bind(series: Series) {
    not_bound_fix(series, "bound_to_no_driver", "03:00.0", "none", "");
}

fn group_not_viable_names_the_other_function_and_its_unbind(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("group_not_viable").status(0);
    o.line("status 2");
    let line = o.line("is not viable");
    let group = line
        .split("IOMMU group ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| o.fail("no group number"));
    assert_eq!(
        line,
        format!(
            "tphctl: session --vfio 05:01.0: IOMMU group {group} of 0000:05:01.0 is not viable: \
             in the same group 0000:05:02.0 is bound to virtio-pci (fix: echo 0000:05:02.0 > \
             /sys/bus/pci/drivers/virtio-pci/unbind)"
        )
    );
    o.line("after the fix: status 0");
}

fn not_root_names_the_group_node_and_the_chown_that_fixes_it(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("not_root").status(0);
    o.line("status 2");
    let node = o
        .line("crw-------")
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string();
    o.line(&format!(
        "tphctl: session --vfio 01:00.0: permission denied opening {node}: this user may not \
         open it (fix: sudo chown $USER {node})"
    ));
    o.lacks("/dev/iommu");
    // The named fix lets the plain user open the device and enable a vector.
    o.line(&format!("running as root for user: chown $USER {node}"));
    o.line("after the fix: status 0");
    o.line("> irqs 1");
    assert!(o.output().contains("> irqs 1\nok\n"), "{}", o.output());
}

fn bdf_absent_says_so(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("bdf_absent").status(2);
    o.line(
        "tphctl: session --vfio 07:00.0: no PCI device 0000:07:00.0 in /sys/bus/pci/devices \
         (lspci -D lists the functions there are)",
    );
}

/// The kernel refuses `VFIO_DEVICE_RESET` (EINVAL) for a device without a reset method; the
/// session says so (the client resets through the raw ioctl and keeps the errno; the old
/// `vfio-ioctls` path reported success whatever the kernel answered), and exits 2.
fn reset_refused_by_the_kernel_is_reported(series: Series) {
    let Some(run) = run(series) else { return };
    let o = run.outcome("reset_refused").status(0);
    o.line("kernel reset methods: []");
    o.line("status 2");
    let text = o.output();
    assert!(
        !text.contains("> reset\nok\n"),
        "a refused reset reported as done:\n{text}"
    );
    let reply = text.split("> reset\n").nth(1).unwrap_or("");
    assert!(
        reply.starts_with("error: ") && reply.contains("EINVAL (22)"),
        "{text}"
    );
}

tph_guest::on_each_kernel!(
    reset_refused_by_the_kernel_is_reported,
    type1_not_loaded_names_modprobe_and_the_fix_works,
    probe_says_unknown_and_opens_nothing,
    v7_forced_opens_enables_msix_and_reports_enotty_as_no_interface,
    feature_forced_reads_config_and_reports_enotty_as_no_interface,
    bound_to_own_driver_names_the_rebind,
    bound_to_no_driver_names_the_bind,
    group_not_viable_names_the_other_function_and_its_unbind,
    not_root_names_the_group_node_and_the_chown_that_fixes_it,
    bdf_absent_says_so,
);
