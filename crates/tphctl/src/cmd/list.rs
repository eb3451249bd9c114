//! `tphctl list`: one row per function with a TPH Requester capability.
//!
//! Also home of the source-selection arguments `list` and `show` share ([`SourceArgs`]).

use std::io::Write;
use std::path::PathBuf;

use tph_regs::report::{report_all, ConfigOnly, FunctionReport};
use tph_regs::source::{Loaded, Source};

use super::{CliError, CmdResult, Found};

/// Where to read functions from (default: `--sysfs /sys`).
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    /// Read a sysfs tree rooted at ROOT [default: /sys]. With `show`, `--sysfs 19:00.0`
    /// means the BDF 19:00.0 under /sys.
    #[arg(long, value_name = "ROOT", num_args = 0..=1, default_missing_value = "/sys",
          conflicts_with_all = ["dump", "emulated"])]
    pub sysfs: Option<PathBuf>,
    /// Read an `lspci -x`/`-xxx`/`-xxxx` dump (with or without `-vvv` text).
    #[arg(long, value_name = "FILE", conflicts_with = "emulated")]
    pub dump: Option<PathBuf>,
    /// Read the embedded emulated machine (`tph_kernel::machines::default_machine`; its
    /// configuration space only, so MSI-X-located entries are not shown).
    #[arg(long)]
    pub emulated: bool,
}

impl SourceArgs {
    /// Loads the machine, printing warnings (for example short sysfs reads) to stderr.
    pub fn load(&self) -> Result<Loaded, CliError> {
        if self.emulated {
            return Ok(Loaded {
                machine: tph_kernel::machines::default_machine(),
                msix: Box::new(ConfigOnly),
                warnings: Vec::new(),
            });
        }
        let source = match (&self.dump, &self.sysfs) {
            (Some(path), _) => Source::Dump(path.clone()),
            (None, root) => Source::Sysfs(root.clone().unwrap_or_else(|| "/sys".into())),
        };
        let loaded = source
            .load()
            .map_err(|e| CliError::new(self.describe(), e))?;
        for w in &loaded.warnings {
            eprintln!("tphctl: warning: {w}");
        }
        Ok(loaded)
    }

    /// Tells the user (on stderr) that nothing with a TPH capability was found, and how many
    /// functions were read, so an empty answer is not mistaken for a failed read.
    ///
    /// When some functions were read only in part (a plain user reading sysfs; a source's only
    /// warnings are such short reads), "none" cannot be told: the line says so instead, as
    /// lspci prints `<access denied>` (found on a real kernel: it used to claim "no function").
    pub fn report_none(&self, loaded: &Loaded) {
        let n = loaded.machine.functions.len();
        let short = loaded.warnings.len();
        if short > 0 {
            eprintln!(
                "tphctl: no TPH Requester capability in the bytes readable, but {short} of {n} \
                 functions were read only in part, so TPH cannot be ruled out ({}; fix: run as \
                 root)",
                self.describe()
            );
            return;
        }
        eprintln!(
            "tphctl: no function with a TPH Requester capability ({n} functions read; {})",
            self.describe()
        );
    }

    /// The source as a phrase for error contexts.
    pub fn describe(&self) -> String {
        if self.emulated {
            return "the emulated default machine".into();
        }
        match (&self.dump, &self.sysfs) {
            (Some(p), _) => format!("reading dump {}", p.display()),
            (None, Some(r)) => format!("reading sysfs at {}", r.display()),
            (None, None) => "reading sysfs at /sys".into(),
        }
    }
}

/// Arguments of `tphctl list`.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Columns: BDF, vendor:device, supported ST modes (no-st, iv, ds, \
    and ext for the extended requester), ST table \
    location/size, Control (mode/requester enable), root port TPH completer (rciep for a Root \
    Complex integrated endpoint, - when no root port was found). Exit status 1 when no function \
    has a TPH capability. JSON field names: crates/tphctl/README-json.md."
)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One `list --json` row.
#[derive(serde::Serialize)]
struct Row<'a> {
    bdf: &'a str,
    vendor_id: u16,
    device_id: u16,
    modes: &'a [&'static str],
    extended_requester: bool,
    table_location: &'static str,
    table_size: u16,
    control_mode: &'static str,
    requester_enable: &'static str,
    root_port: Option<&'a str>,
    root_port_completer: Option<&'static str>,
    enable_ok: bool,
}

fn row(r: &FunctionReport) -> Row<'_> {
    Row {
        bdf: &r.bdf,
        vendor_id: r.vendor_id,
        device_id: r.device_id,
        modes: &r.enable.modes,
        extended_requester: r.tph.extended_requester,
        table_location: r.tph.table_location,
        table_size: r.tph.table_size,
        control_mode: r.tph.control.mode,
        requester_enable: r.tph.control.requester_enable,
        root_port: r.root_port.as_ref().map(|p| p.bdf.as_str()),
        root_port_completer: r.root_port.as_ref().and_then(|p| p.completer),
        enable_ok: r.enable.ok,
    }
}

/// The completer column: `rciep`, the completer name, `?` when unread, `-` without a port.
pub fn completer_cell(r: &FunctionReport) -> &'static str {
    match (&r.root_port, r.port_type) {
        (_, Some("rc_integrated_endpoint")) => "rciep",
        (Some(p), _) => p.completer.unwrap_or("?"),
        (None, _) => "-",
    }
}

fn modes_cell(r: &FunctionReport) -> String {
    let short = |m: &&'static str| -> &'static str {
        match *m {
            "no_st" => "no-st",
            "interrupt_vector" => "iv",
            "device_specific" => "ds",
            other => other,
        }
    };
    let mut cell: Vec<&str> = r.enable.modes.iter().map(short).collect();
    if r.tph.extended_requester {
        cell.push("ext");
    }
    if cell.is_empty() {
        return "-".into();
    }
    cell.join(",")
}

fn table_cell(r: &FunctionReport) -> String {
    match r.tph.table_location {
        "none" => "none".into(),
        loc => format!("{loc}/{}", r.tph.table_size),
    }
}

/// Writes the text table.
pub fn write_table(reports: &[FunctionReport], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<12}  {:<9}  {:<15}  {:<15}  {:<20}  COMPLETER",
        "BDF", "ID", "MODES", "TABLE", "CONTROL"
    )?;
    for r in reports {
        let id = format!("{:04x}:{:04x}", r.vendor_id, r.device_id);
        let modes = modes_cell(r);
        let control = format!("{}/{}", r.tph.control.mode, r.tph.control.requester_enable);
        writeln!(
            out,
            "{:<12}  {id:<9}  {modes:<15}  {:<15}  {control:<20}  {}",
            r.bdf,
            table_cell(r),
            completer_cell(r)
        )?;
    }
    Ok(())
}

/// Reports for every function with a TPH capability; one that cannot be decoded (its
/// capability lies past the bytes read) is named in a warning on stderr.
pub fn reports(loaded: &Loaded) -> Vec<FunctionReport> {
    let all = report_all(&loaded.machine, loaded.msix.as_ref());
    all.into_iter()
        .filter_map(|(bdf, r)| r.map_err(|e| eprintln!("tphctl: warning: {bdf}: {e}")).ok())
        .collect()
}

/// Runs the subcommand.
pub fn run(args: Args) -> CmdResult {
    let loaded = args.source.load()?;
    let reports = reports(&loaded);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if args.json {
        let rows: Vec<Row<'_>> = reports.iter().map(row).collect();
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write_table(&reports, &mut out)
    };
    written.map_err(|e| CliError::new("writing output", e))?;
    if reports.is_empty() {
        args.source.report_none(&loaded);
    }
    Ok(if reports.is_empty() {
        Found::No
    } else {
        Found::Yes
    })
}
