//! Fuzzes the sysfs reader: the input becomes a tree of up to four functions under a private
//! temporary root (the first byte picks how many; the rest is cut into their `config` files,
//! of any length, and a `resource0` for the first one), which `Sysfs::read_machine` then reads
//! and the decoders walk. Must never panic or hang.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use tph_regs::sysfs::Sysfs;

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("tph-fuzz-sysfs-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let _ = std::fs::remove_dir_all(&root);
    let devices = root.join("bus/pci/devices");
    let (count, rest) = match data.split_first() {
        Some((n, rest)) => (usize::from(n % 4) + 1, rest),
        None => (1, data),
    };
    let size = rest.len() / count + 1;
    for (i, config) in rest.chunks(size).chain(std::iter::repeat(&[][..])).take(count).enumerate() {
        let dir = devices.join(format!("0000:00:{:02x}.0", i));
        if std::fs::create_dir_all(&dir).is_err() || std::fs::write(dir.join("config"), config).is_err() {
            return;
        }
        if i == 0 {
            let _ = std::fs::write(dir.join("resource0"), config);
        }
    }
    if let Ok(read) = Sysfs::new(&root).read_machine() {
        for f in &read.machine.functions {
            let _ = tph_regs::caps::walk_ext_caps(&f.config);
            let _ = tph_regs::tph::TphRequester::find(&f.config);
            let _ = read.machine.root_port_of(f.bdf);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
});
