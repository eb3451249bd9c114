//! The real-kernel rig (`.ci/guest-deps`): its 7.3 kernel, built with the TPH core, boots under
//! QEMU 11.1, the rig's preparation makes root ports report a TPH completer, and the guest test
//! module (`crates/tph-guest/module`) built against the rig's kernel loads and drives the real
//! core. No served device here: the root port itself and a missing function are what the core
//! meets (`guest_serve.rs` has the device).
//!
//! The completer stand-in is checked by the real `lspci` in the guest (it reads the root port's
//! configuration space through sysfs, so through the wrapped accessors) and by the module's own
//! read through the kernel's `pcie_capability_read_dword`, for each value of the parameter, and
//! gone again once the stand-in is unloaded.

mod guest;

use tph_guest::rig;

/// q35 root port at 00:02.0, nothing behind it.
const PORT: &str = "0000:00:02.0";

/// Writes one command to the test module and prints its lines.
const T: &str =
    "t() { echo \"$*\" > /sys/kernel/debug/tph_test/ctl && cat /sys/kernel/debug/tph_test/ctl; }\n";

#[test]
fn rig_kernel_boots_with_the_completer_stand_in_and_the_test_module() {
    let Some(rig) = rig::for_test("guest_rig") else {
        return;
    };
    let release = rig.release.clone();
    let mut g = guest::rig_guest(rig.clone());
    g.cpus = 2;
    g.qemu_args = guest::devices(&[&format!("{},id=rp1,chassis=1,slot=1,addr=2", rig.root_port)]);
    g.setup = "mount -t debugfs debugfs /sys/kernel/debug\n".into();
    g.scenario(
        "kernel",
        "uname -r; grep -c . /proc/cpuinfo > /dev/null; \
         echo \"completer $(cat /sys/module/tph_rootport/parameters/completer)\"",
    );
    g.scenario(
        "lspci_completer",
        &format!(
            "p=/sys/module/tph_rootport/parameters/completer\n\
             for v in tph ext none; do echo $v > $p; \
             echo \"$v: $(lspci -s {PORT} -vvv 2>/dev/null | grep -o 'TPHComp[+-] ExtTPHComp[+-]')\"; done\n\
             echo bogus > $p; echo \"bogus refused: $?\"; echo \"now $(cat $p)\"\n\
             echo tph > $p\n\
             rmmod tph_rootport; echo \"unloaded: $(lspci -s {PORT} -vvv 2>/dev/null | grep -o 'TPHComp[+-] ExtTPHComp[+-]')\"\n\
             insmod /rig/tph_rootport.ko completer=ext; echo \"reloaded: $(lspci -s {PORT} -vvv 2>/dev/null | grep -o 'TPHComp[+-] ExtTPHComp[+-]')\""
        ),
    );
    g.scenario(
        "test_module",
        &format!(
            "{T}insmod /rig/tph_test.ko || exit 1\n\
             t state\n\
             t dev 0000:09:00.0\n\
             t dev {PORT}\n\
             t devcap2\n\
             echo none > /sys/module/tph_rootport/parameters/completer\n\
             t devcap2\n\
             t enable 1\n\
             t set_st 0 1\n\
             t get_st 0 vm\n\
             t bogus; echo \"bogus refused: $?\"\n\
             rmmod tph_test; echo \"unloaded: $?\""
        ),
    );
    let Some(run) = g.run() else { return };
    assert!(run.finished, "{}", run.console);

    let kernel = run.outcome("kernel").status(0);
    assert_eq!(
        kernel.output(),
        format!("{release}\ncompleter tph\n"),
        "the rig's kernel, with GUEST_PREP's completer"
    );
    assert!(release.starts_with("7.3"), "{release}");

    // lspci's own decoding of Device Capabilities 2 (pciutils, not ours).
    assert_eq!(
        run.outcome("lspci_completer").status(0).output(),
        "tph: TPHComp+ ExtTPHComp-\n\
         ext: TPHComp+ ExtTPHComp+\n\
         none: TPHComp- ExtTPHComp-\n\
         sh: write error: Invalid argument\n\
         bogus refused: 1\n\
         now none\n\
         unloaded: TPHComp- ExtTPHComp-\n\
         reloaded: TPHComp+ ExtTPHComp+\n"
    );

    // Device Capabilities 2 as the kernel reads it: QEMU 11.1's root port value, and with the
    // stand-in's "ext" only bits 13:12 (TPH Completer Supported) added.
    const NONE: u32 = 0x0030_0020;
    const EXT: u32 = NONE | 0x3000;
    // A root port has no TPH Requester capability: the real core refuses to enable it (EINVAL)
    // and to write a tag; pcie_tph_get_cpu_st on a root port finds itself as the root port and
    // has no _DSM to ask in this guest (EINVAL, tag 0). Type 4 is a root port.
    assert_eq!(
        run.outcome("test_module").status(0).output(),
        format!(
            "state = -19 no device selected\n\
             dev 0000:09:00.0 = -19\n\
             dev {PORT} = 0 type=4 tph_cap=0x0\n\
             devcap2 = 0 val={EXT:#010x} tph_comp=3\n\
             devcap2 = 0 val={NONE:#010x} tph_comp=0\n\
             enable 1 = -22\n\
             set_st 0 0x1 = -22\n\
             get_st 0 vm = -22 tag=0x0\n\
             sh: write error: Invalid argument\n\
             bogus refused: 1\n\
             unloaded: 0\n"
        )
    );
}
