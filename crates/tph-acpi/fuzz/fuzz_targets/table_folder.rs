//! Fuzzes the table-folder loader (`--tables DIR`, `--firmware DIR`): the input becomes a
//! folder under a private temporary root holding a DSDT, an SSDT and an APIC file (the first
//! two bytes cut it in three; the AML parts get a valid table header so the fuzzer explores
//! their contents), which `firmware::open` loads and whose tags for a few UIDs are asked. Must
//! never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_acpi::aml::table::build;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("tph-fuzz-tables-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let (cuts, body) = data.split_at(data.len().min(2));
    let a = usize::from(cuts.first().copied().unwrap_or(0)) * body.len() / 256;
    let b = (a + usize::from(cuts.get(1).copied().unwrap_or(0)) * body.len() / 256).min(body.len());
    let (dsdt, rest) = body.split_at(a);
    let (ssdt, apic) = rest.split_at(b - a);
    let files = [
        ("DSDT.dat", build(b"DSDT", 2, dsdt)),
        ("SSDT1.dat", build(b"SSDT", 2, ssdt)),
        ("APIC.dat", apic.to_vec()),
    ];
    for (name, bytes) in &files {
        if std::fs::write(dir.join(name), bytes).is_err() {
            return;
        }
    }
    let _ = tph_acpi::dsm::read_table_dir(&dir);
    if let Ok(fw) = tph_acpi::firmware::open(&dir) {
        for uid in [0, 1, 255] {
            let _ = fw.source.st_info(uid);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
