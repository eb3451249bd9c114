//! Spawning the ACPICA compiler `iasl` (package `acpica-tools`) to turn ASL firmware into AML
//! (feature `iasl`, on by default; programs that only read compiled tables can turn it off).

use std::path::Path;

use crate::FirmwareError;

/// Compiles one ASL `DefinitionBlock` with the `iasl` compiler (package `acpica-tools`) and
/// returns the AML table.
pub fn compile_asl(asl: &str) -> Result<Vec<u8>, FirmwareError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tph-acpi-iasl-{}-{n}", std::process::id()));
    let io = |what: &str, e: std::io::Error| FirmwareError::Io {
        path: what.to_string(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let result = run_iasl(IASL, &dir, asl);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The ASL compiler run by [`compile_asl`], found on `PATH`.
const IASL: &str = "iasl";

fn run_iasl(program: &str, dir: &Path, asl: &str) -> Result<Vec<u8>, FirmwareError> {
    let io = |what: &str, e: std::io::Error| FirmwareError::Io {
        path: what.to_string(),
        why: e.to_string(),
    };
    let src = dir.join("firmware.asl");
    std::fs::write(&src, asl).map_err(|e| io(&src.display().to_string(), e))?;
    let out = std::process::Command::new(program)
        .arg("-p")
        .arg(dir.join("firmware"))
        .arg(&src)
        .output()
        .map_err(|e| iasl_start_error(program, &e))?;
    let aml = dir.join("firmware.aml");
    if !out.status.success() || !aml.exists() {
        let why = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Error"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(FirmwareError::Table {
            table: "ASL".into(),
            why: format!("iasl failed: {why}"),
        });
    }
    crate::firmware::read_bounded(&aml)
}

/// Why `iasl` did not start; a missing compiler says which package provides it.
fn iasl_start_error(program: &str, e: &std::io::Error) -> FirmwareError {
    let why = if e.kind() == std::io::ErrorKind::NotFound {
        "not found on PATH: ASL firmware is compiled with the ACPICA compiler iasl; install the \
         package acpica-tools, or give compiled tables (.aml) instead"
            .to_string()
    } else {
        e.to_string()
    };
    FirmwareError::Io {
        path: program.to_string(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iasl_missing_names_the_package_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_iasl("tph-acpi-test-no-such-iasl", dir.path(), "").unwrap_err();
        let FirmwareError::Io { path, why } = err else {
            panic!("{err:?}");
        };
        assert_eq!(path, "tph-acpi-test-no-such-iasl");
        assert!(
            why.starts_with("not found on PATH") && why.contains("acpica-tools"),
            "{why}"
        );
    }
}
