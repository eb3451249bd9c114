//! `tphctl show [BDF]`: full decode of the TPH state of one function (or every function with a
//! TPH capability), beyond what lspci prints, or `--lspci` parity output.

use std::io::Write;

use tph_regs::machine::{Bdf, Machine};
use tph_regs::report::{report_function, FunctionReport};
use tph_regs::source::Loaded;

use super::list::{completer_cell, reports, SourceArgs};
use super::{CliError, CmdResult, Found};

/// Arguments of `tphctl show`.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Exit status 1 when the function is absent or has no TPH \
    capability (or, without BDF, when no function has one). JSON field names: \
    crates/tphctl/README-json.md."
)]
pub struct Args {
    /// The function, as lspci prints it: 19:00.0 or 0000:19:00.0. Default: every function
    /// with a TPH capability.
    bdf: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
    /// Print JSON instead of text.
    #[arg(long, conflicts_with = "lspci")]
    json: bool,
    /// Print, per function with a TPH capability, its BDF then exactly the lines
    /// `lspci -vvv` prints for that capability.
    #[arg(long)]
    lspci: bool,
}

/// Runs the subcommand.
pub fn run(mut args: Args) -> CmdResult {
    take_bdf_from_sysfs(&mut args);
    let bdf = args
        .bdf
        .as_deref()
        .map(str::parse::<Bdf>)
        .transpose()
        .map_err(|e| CliError::new("show", e))?;
    let loaded = args.source.load()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let found = if args.lspci {
        lspci(&loaded.machine, bdf, &mut out)?
    } else {
        let reports = select(&loaded, bdf)?;
        emit(&reports, args.json, &mut out).map_err(|e| CliError::new("writing output", e))?;
        !reports.is_empty()
    };
    out.flush()
        .map_err(|e| CliError::new("writing output", e))?;
    Ok(if found { Found::Yes } else { Found::No })
}

/// `show --sysfs 19:00.0`: clap hands the BDF to `--sysfs` as ROOT; a value that parses as a
/// BDF, with no BDF given, is the BDF and the root stays `/sys`.
fn take_bdf_from_sysfs(args: &mut Args) {
    let root_is_bdf = args
        .source
        .sysfs
        .as_deref()
        .and_then(|p| p.to_str())
        .is_some_and(|s| s.parse::<Bdf>().is_ok());
    if args.bdf.is_none() && root_is_bdf {
        let root = args.source.sysfs.replace("/sys".into());
        args.bdf = root.and_then(|p| p.to_str().map(str::to_owned));
    }
}

fn lspci(m: &Machine, bdf: Option<Bdf>, out: &mut impl Write) -> Result<bool, CliError> {
    let written = match bdf {
        Some(b) => match m.function(b) {
            Some(f) => tph_regs::lspci::write_function(f, m.shows_domains(), out),
            None => Ok(false),
        },
        None => tph_regs::lspci::write_machine(m, out).map(|n| n > 0),
    };
    written.map_err(|e| CliError::new("writing output", e))
}

fn select(loaded: &Loaded, bdf: Option<Bdf>) -> Result<Vec<FunctionReport>, CliError> {
    let Some(b) = bdf else {
        return Ok(reports(loaded));
    };
    let (m, msix) = (&loaded.machine, loaded.msix.as_ref());
    let Some(f) = m.function(b) else {
        eprintln!("tphctl: show: no function {b}");
        return Ok(Vec::new());
    };
    match report_function(m, f, msix) {
        Some(r) => Ok(vec![
            r.map_err(|e| CliError::new(format!("decoding {b}"), e))?
        ]),
        None => {
            eprintln!("tphctl: show: {b} has no TPH Requester capability");
            Ok(Vec::new())
        }
    }
}

fn emit(reports: &[FunctionReport], json: bool, out: &mut impl Write) -> std::io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, reports)?;
        return writeln!(out);
    }
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_report(r, out)?;
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Writes the text decode of one function.
pub fn write_report(r: &FunctionReport, out: &mut impl Write) -> std::io::Result<()> {
    let t = &r.tph;
    let port = r.port_type.unwrap_or("no PCI Express capability");
    writeln!(
        out,
        "{} {:04x}:{:04x} ({port})",
        r.bdf, r.vendor_id, r.device_id
    )?;
    writeln!(
        out,
        "\tTPH Requester capability [{:03x} v{}]",
        t.offset, t.version
    )?;
    writeln!(out, "\t\tCapability: {:08x}", t.capability)?;
    writeln!(out, "\t\t\tNo-ST mode supported: {}", yes(t.no_st_mode))?;
    writeln!(
        out,
        "\t\t\tInterrupt vector mode supported: {}",
        yes(t.interrupt_vector_mode)
    )?;
    writeln!(
        out,
        "\t\t\tDevice specific mode supported: {}",
        yes(t.device_specific_mode)
    )?;
    writeln!(
        out,
        "\t\t\tExtended requester supported: {}",
        yes(t.extended_requester)
    )?;
    writeln!(out, "\t\t\tST table location: {}", t.table_location)?;
    writeln!(out, "\t\t\tST table size: {}", t.table_size)?;
    let c = &t.control;
    writeln!(out, "\t\tControl: {:08x}", c.raw)?;
    writeln!(out, "\t\t\tST mode: {} ({})", c.mode, c.mode_field)?;
    writeln!(
        out,
        "\t\t\tRequester enable: {} ({})",
        c.requester_enable, c.requester_enable_field
    )?;
    write_entries(r, out)?;
    write_upstream(r, out)?;
    write_enable(r, out)
}

fn write_entries(r: &FunctionReport, out: &mut impl Write) -> std::io::Result<()> {
    let t = &r.tph;
    if t.entries.is_empty() && t.entries_note.is_none() {
        return writeln!(out, "\tST table entries: none");
    }
    writeln!(out, "\tST table entries ({}):", t.table_location)?;
    for e in &t.entries {
        writeln!(out, "\t\t[{}] {:#06x}", e.index, e.st)?;
    }
    if let Some(note) = &t.entries_note {
        writeln!(out, "\t\tnote: {note}")?;
    }
    Ok(())
}

fn write_upstream(r: &FunctionReport, out: &mut impl Write) -> std::io::Result<()> {
    match (&r.root_port, completer_cell(r)) {
        (_, "rciep") => writeln!(out, "\tRoot port: none (Root Complex integrated endpoint)"),
        (Some(p), c) => writeln!(out, "\tRoot port: {} (TPH completer: {c})", p.bdf),
        (None, _) => writeln!(out, "\tRoot port: none found"),
    }
}

fn write_enable(r: &FunctionReport, out: &mut impl Write) -> std::io::Result<()> {
    let e = &r.enable;
    let modes = if e.modes.is_empty() {
        "none".to_owned()
    } else {
        e.modes.join(", ")
    };
    writeln!(out, "\tEnable: modes accepted: {modes}")?;
    match (e.ok, e.requester_type, e.requester_enable) {
        (true, Some(t), Some(name)) => {
            writeln!(out, "\t\twould succeed: requester type {t} ({name})")?
        }
        _ => writeln!(out, "\t\twould fail")?,
    }
    if let Some(reason) = &e.reason {
        writeln!(out, "\t\t{reason}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        show: Args,
    }

    fn parsed(argv: &[&str]) -> Args {
        let mut args = Cli::parse_from(argv).show;
        take_bdf_from_sysfs(&mut args);
        args
    }

    #[test]
    fn sysfs_followed_by_bdf_takes_it_as_bdf_with_default_root() {
        let a = parsed(&["show", "--sysfs", "19:00.0"]);
        assert_eq!(a.bdf.as_deref(), Some("19:00.0"));
        assert_eq!(
            a.source.sysfs.as_deref(),
            Some(std::path::Path::new("/sys"))
        );
    }

    #[test]
    fn sysfs_with_real_root_is_kept() {
        let a = parsed(&["show", "--sysfs", "/tmp/fake", "19:00.0"]);
        assert_eq!(a.bdf.as_deref(), Some("19:00.0"));
        assert_eq!(
            a.source.sysfs.as_deref(),
            Some(std::path::Path::new("/tmp/fake"))
        );
    }
}
