//! `tphctl list`: one row per function with a TPH Requester capability.
//!
//! Also home of the source-selection arguments `list` and `show` share ([`SourceArgs`]) and of
//! what both say about functions whose TPH verdict is unknown.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};
use tph_regs::machine::Bdf;
use tph_report::report::{scan, ConfigOnly, FunctionReport, Unread};
use tph_report::source::{Loaded, Source};

use super::{CliError, CmdResult, Found};

// Where to read functions from (default: `--sysfs /sys`). A plain comment: a doc comment
// would replace the about text of the subcommands that flatten it (clap adds them deferred).
#[derive(clap::Args, Debug, Clone)]
pub struct SourceArgs {
    /// Read a sysfs tree rooted at ROOT [default: /sys]. With `show`, `--sysfs 19:00.0`
    /// means the BDF 19:00.0 under /sys.
    #[arg(long, value_name = "ROOT", num_args = 0..=1, default_missing_value = "/sys",
          conflicts_with_all = ["dump", "emulated"])]
    pub sysfs: Option<PathBuf>,
    /// Read an `lspci -xxxx` dump (with or without `-vvv` text); `-` reads standard input.
    /// `-x`/`-xxx` dumps lack the extended space where TPH lives: those functions are
    /// reported as unknown. Limits: 512 MiB, lines of 4096 bytes, 131,072 functions.
    #[arg(long, value_name = "FILE", conflicts_with = "emulated")]
    pub dump: Option<PathBuf>,
    /// Read the embedded emulated machine (`tph_kernel::machines::default_machine`; its
    /// configuration space only, so MSI-X-located entries are not shown).
    #[arg(long)]
    pub emulated: bool,
}

impl SourceArgs {
    /// Loads the machine for TPH output: a dump keeps only the bytes the reports and the
    /// lspci lines read (`tph_report::source::Source::load_for_reports`).
    pub fn load(&self) -> Result<Loaded, CliError> {
        if self.emulated {
            return Ok(Loaded::new(
                tph_kernel::machines::default_machine(),
                Box::new(ConfigOnly),
            ));
        }
        let source = match (&self.dump, &self.sysfs) {
            (Some(path), _) => Source::Dump(path.clone()),
            (None, root) => Source::Sysfs(root.clone().unwrap_or_else(|| "/sys".into())),
        };
        source
            .load_for_reports()
            .map_err(|e| CliError::new(self.describe(), e))
    }

    /// Tells the user (on stderr) that nothing with a TPH capability was found, and how many
    /// functions were read, so an empty answer is not mistaken for a failed read.
    /// (Functions read only in part are reported by `report_unknown` instead: "none" cannot be
    /// told for them.)
    pub fn report_none(&self, loaded: &Loaded) {
        let n = loaded.machine.functions.len();
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
            (Some(p), _) if p.as_os_str() == "-" => "reading a dump from standard input".into(),
            (Some(p), _) => format!("reading dump {}", p.display()),
            (None, Some(r)) => format!("reading sysfs at {}", r.display()),
            (None, None) => "reading sysfs at /sys".into(),
        }
    }
}

// Arguments of `tphctl list`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Columns: BDF, vendor:device, ST modes the capability supports \
    (no_st, interrupt_vector, device_specific), requester types it can use (tph, and tph_ext \
    for the extended requester), ST table location/size (none, capability, msix, reserved), \
    Control (mode/requester enable), root port TPH completer (none, tph, tph_ext, reserved; \
    rciep for a Root Complex integrated endpoint, - when no root port was found, ? when its \
    DevCap2 was not read). A function whose extended configuration space was not read (an \
    `lspci -xxx` dump, sysfs read without root) has an unknown TPH verdict: one message on \
    stderr counts them, with the fix; JSON lists them with `tph_status` \"unknown\". \
    JSON field names: crates/tphctl/README-json.md.\n\n\
    Exit status: 0 rows printed and no verdict unknown; 1 no function has a TPH capability; 2 \
    an error, or some verdict unknown (the rows printed are still right). A closed pipe on \
    standard output ends the output quietly with status 0."
)]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `0x` and four hex digits, for 16-bit registers and IDs in JSON.
pub fn hex16(v: u16) -> String {
    format!("{v:#06x}")
}

/// `0x` and eight hex digits, for 32-bit registers in JSON.
pub fn hex32(v: u32) -> String {
    format!("{v:#010x}")
}

/// One `list --json` row: `show --json`'s object cut to the columns of the table, every field
/// at the same path with the same value (root port, Control, table location and the enable
/// outcome use the serialisers `show` uses).
fn row(r: &FunctionReport) -> Value {
    json!({
        "bdf": r.bdf,
        "tph_status": "present",
        "vendor_id": r.vendor_id,
        "vendor_id_hex": hex16(r.vendor_id),
        "device_id": r.device_id,
        "device_id_hex": hex16(r.device_id),
        "tph": {
            "extended_requester": r.tph.extended_requester,
            "table_location": r.tph.table_location,
            "table_size": r.tph.table_size,
            "control": r.tph.control,
        },
        "root_port": r.root_port,
        "enable": {
            "ok": r.enable.ok,
            "modes": r.enable.modes,
        },
    })
}

/// The JSON element of a function whose verdict is unknown (`list` and `show`).
pub fn unknown_json(bdf: Bdf, unread: Unread, fix: &str) -> Value {
    json!({
        "bdf": bdf.to_string(),
        "tph_status": "unknown",
        "unread": unread.name(),
        "fix": fix,
    })
}

/// Writes `items` as one pretty-printed JSON array and a newline, serialising each item as
/// it comes.
pub fn write_json_array<T: serde::Serialize>(
    out: &mut impl Write,
    items: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    use serde::Serializer;
    let mut ser = serde_json::Serializer::pretty(&mut *out);
    ser.collect_seq(items).map_err(std::io::Error::from)?;
    writeln!(out)
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
    if r.enable.modes.is_empty() {
        return "-".into();
    }
    r.enable.modes.join(",")
}

fn requester_cell(r: &FunctionReport) -> &'static str {
    if r.tph.extended_requester {
        "tph,tph_ext"
    } else {
        "tph"
    }
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
        "{:<12}  {:<9}  {:<38}  {:<11}  {:<15}  {:<24}  COMPLETER",
        "BDF", "ID", "MODES", "REQUESTER", "TABLE", "CONTROL"
    )?;
    for r in reports {
        let id = format!("{:04x}:{:04x}", r.vendor_id, r.device_id);
        let control = format!("{}/{}", r.tph.control.mode, r.tph.control.requester_enable);
        writeln!(
            out,
            "{:<12}  {id:<9}  {:<38}  {:<11}  {:<15}  {control:<24}  {}",
            r.bdf,
            modes_cell(r),
            requester_cell(r),
            table_cell(r),
            completer_cell(r)
        )?;
    }
    Ok(())
}

/// Reports for every function with a TPH capability and the unknown verdicts; a function
/// whose capability cannot be decoded (its registers lie past the bytes read) is named on
/// stderr and counts as unknown (its extended space was cut short).
pub fn reports(loaded: &Loaded) -> (Vec<FunctionReport>, Vec<(Bdf, Unread)>) {
    let all = scan(&loaded.machine, loaded.msix.as_ref());
    let mut unknown = all.unknown;
    let mut reports = Vec::with_capacity(all.reports.len());
    for (bdf, r) in all.reports {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("tphctl: {bdf}: {e}");
                unknown.push((bdf, Unread::Extended));
            }
        }
    }
    (reports, unknown)
}

/// Says once, on stderr, how many verdicts are unknown and how to fix it.
pub fn report_unknown(unknown: &[(Bdf, Unread)], fix: &str) {
    let Some((first, unread)) = unknown.first() else {
        return;
    };
    let (noun, more) = match unknown.len() {
        1 => ("function".to_owned(), String::new()),
        n => (format!("{n} functions"), format!(" (first {first}, ...)")),
    };
    let who = if unknown.len() == 1 {
        format!("{noun} {first}")
    } else {
        format!("{noun}{more}")
    };
    eprintln!("tphctl: TPH unknown for {who}: {}; {fix}", unread.phrase());
}

/// The outcome: any unknown verdict is a partial answer.
pub fn outcome(found: bool, unknown: &[(Bdf, Unread)]) -> Found {
    match (found, unknown.is_empty()) {
        (_, false) => Found::Failed,
        (true, true) => Found::Yes,
        (false, true) => Found::No,
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> CmdResult {
    let loaded = args.source.load()?;
    let (reports, unknown) = reports(&loaded);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if args.json {
        // One row built at a time: memory does not grow with the JSON text.
        let fix = loaded.unread_fix;
        let rows = reports.iter().map(row);
        let rows = rows.chain(unknown.iter().map(|&(b, u)| unknown_json(b, u, fix)));
        write_json_array(&mut out, rows)
    } else {
        write_table(&reports, &mut out)
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new("writing output", e))?;
    report_unknown(&unknown, loaded.unread_fix);
    if reports.is_empty() && unknown.is_empty() {
        args.source.report_none(&loaded);
    }
    Ok(outcome(!reports.is_empty(), &unknown))
}
