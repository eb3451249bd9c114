//! `tphctl show [BDF]`: full decode of the TPH state of one function (or every function with a
//! TPH capability), beyond what lspci prints, or `--lspci` parity output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tph_acpi::firmware::{self, FirmwareKind};
use tph_acpi::{madt, SteeringTagSource, TableSource};
use tph_regs::machine::{Bdf, Machine};
use tph_report::report::{report_function, tph_presence, FunctionReport, TphPresence, Unread};
use tph_report::source::Loaded;

use super::list::{self, completer_cell, hex16, hex32, reports, SourceArgs};
use super::tagmap::{self, Owner, OwnerMap, TagState, Width};
use super::{CliError, CmdResult, Found};

/// UIDs asked about by default: the emulated host's CPUs 0-7 (`HostOptions::default`).
const DEFAULT_CPUS: u32 = 8;

// Arguments of `tphctl show`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "With --firmware, --tables or \
    --emulated, each ST table entry names the processor UIDs (and memory type, vm or pm) \
    whose firmware tag it is, at the width the kernel would negotiate (8-bit tags for \
    requester type 1, 16-bit for type 3) and only where the valid bit is set. Tag 0 is also \
    what a cleared entry holds. Runs of entries with the same tag (and owners) print as one \
    line `[first-last]`. A function whose extended configuration space was not read (an \
    `lspci -xxx` dump, sysfs read without root) has an unknown TPH verdict: never reported \
    as absent. JSON field names: crates/tphctl/README-json.md.\n\n\
    Exit status: 0 the function (or, without BDF, some function) has a TPH capability and \
    every verdict is known; 1 the function is absent or has no TPH capability (or, without \
    BDF, none has), or the firmware has no TPH _DSM; 2 an error, or a verdict unknown because \
    bytes were not read, or a firmware lookup failed. A closed pipe on standard output ends \
    the output quietly with status 0.")]
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
    #[arg(long, conflicts_with_all = ["firmware", "tables", "uids", "cpus"])]
    lspci: bool,
    #[command(flatten)]
    owners: OwnerArgs,
}

// Where the tag owners of ST table entries come from (a plain comment, as above).
#[derive(clap::Args, Debug)]
struct OwnerArgs {
    /// Name the CPUs each ST table entry's tag belongs to, from the firmware at PATH: a table
    /// file of lines `UID 0xST_INFO` (the 64-bit `_DSM` function 0xF result; `#` starts a
    /// comment), an ASL file (compiled with iasl, package acpica-tools), an AML table (.aml,
    /// .dat) or a folder as for --tables; the host bridge `_DSM` is run by the tph-acpi AML
    /// interpreter.
    #[arg(long, value_name = "PATH", conflicts_with = "tables")]
    firmware: Option<PathBuf>,
    /// The same from a folder of ACPI tables: the DSDT/SSDT files in DIR; UIDs from the MADT
    /// (a file named APIC*) when present.
    #[arg(long, value_name = "DIR")]
    tables: Option<PathBuf>,
    /// Processor UIDs to ask firmware about, e.g. `0-15,32` [default: 0 to N-1 for
    /// --cpus N, or the MADT's UIDs for a folder of tables].
    #[arg(long, value_name = "LIST", conflicts_with = "cpus")]
    uids: Option<String>,
    /// Ask about UIDs 0 to N-1 [default: 8, the emulated host's CPUs].
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
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
    let explicit_uids = explicit_uids(&args.owners)?;
    let loaded = args.source.load()?;
    let owners = if args.lspci {
        None
    } else {
        match owner_source(&args.owners, args.source.emulated, explicit_uids)? {
            Owners::NoDsm => return Ok(Found::No),
            Owners::Some(o, lookups_ok) => Some((o, lookups_ok)),
            Owners::None => None,
        }
    };
    let (selected, unknown) = select(&loaded, bdf)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let found = if args.lspci {
        lspci(&loaded.machine, bdf, &mut out)?
    } else {
        let src = owners.as_ref().map(|(o, _)| o);
        let annotated: Vec<Annotated> = selected
            .iter()
            .map(|r| (r, src.map(|o| annotate(r, o))))
            .collect();
        let fix = loaded.unread_fix;
        emit(&annotated, &unknown, fix, args.json, &mut out)
            .map_err(|e| CliError::new("writing output", e))?;
        !selected.is_empty()
    };
    out.flush()
        .map_err(|e| CliError::new("writing output", e))?;
    list::report_unknown(&unknown, loaded.unread_fix);
    if !found && bdf.is_none() && unknown.is_empty() {
        args.source.report_none(&loaded);
    }
    let lookups_ok = owners.as_ref().is_none_or(|(_, ok)| *ok);
    Ok(match list::outcome(found, &unknown) {
        Found::Yes if !lookups_ok => Found::Failed,
        other => other,
    })
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

/// `--lspci`: the lines lspci prints for the capability of `bdf`, or of every function.
fn lspci(m: &Machine, bdf: Option<Bdf>, out: &mut impl Write) -> Result<bool, CliError> {
    let written = match bdf {
        Some(b) => match m.function(b) {
            Some(f) => tph_report::lspci::write_function(f, m.shows_domains(), out),
            None => Ok(false),
        },
        None => tph_report::lspci::write_machine(m, out).map(|n| n > 0),
    };
    written.map_err(|e| CliError::new("writing output", e))
}

/// The reports asked for (one function, or every one with a TPH capability) and the
/// functions whose verdict is unknown.
fn select(loaded: &Loaded, bdf: Option<Bdf>) -> Result<Selected, CliError> {
    let Some(b) = bdf else {
        return Ok(reports(loaded));
    };
    let (m, msix) = (&loaded.machine, loaded.msix.as_ref());
    let Some(f) = m.function(b) else {
        eprintln!("tphctl: show: no function {b}");
        return Ok((Vec::new(), Vec::new()));
    };
    match tph_presence(&f.config) {
        TphPresence::Unknown(u) => return Ok((Vec::new(), vec![(b, u)])),
        TphPresence::Absent => {
            eprintln!("tphctl: show: {b} has no TPH Requester capability");
            return Ok((Vec::new(), Vec::new()));
        }
        TphPresence::Present(_) => {}
    }
    match report_function(m, f, msix) {
        Some(r) => Ok((
            vec![r.map_err(|e| CliError::new(format!("decoding {b}"), e))?],
            Vec::new(),
        )),
        None => Ok((Vec::new(), Vec::new())),
    }
}

/// Reports selected, and the unknown verdicts.
type Selected = (Vec<FunctionReport>, Vec<(Bdf, Unread)>);

/// A report and, when a firmware source was given, its entries' tag owners.
type Annotated<'a> = (&'a FunctionReport, Option<FnOwners>);

fn emit(
    reports: &[Annotated],
    unknown: &[(Bdf, Unread)],
    fix: &str,
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if json {
        // One object built at a time: memory does not grow with the JSON text.
        let values = reports
            .iter()
            .map(|(r, o)| Lazy(move || report_json(r, o.as_ref())));
        let unknown = unknown
            .iter()
            .map(|&(b, u)| Lazy(move || Ok(list::unknown_json(b, u, fix))));
        return list::write_json_array(out, values.map(Either::A).chain(unknown.map(Either::B)));
    }
    for (i, (r, o)) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_report(r, o.as_ref(), out)?;
    }
    Ok(())
}

/// A JSON value built when it is serialised.
struct Lazy<F>(F);

impl<F: Fn() -> Result<serde_json::Value, serde_json::Error>> serde::Serialize for Lazy<F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        (self.0)().map_err(S::Error::custom)?.serialize(s)
    }
}

/// One of two serialisable kinds, for one array of both.
enum Either<A, B> {
    A(A),
    B(B),
}

impl<A: serde::Serialize, B: serde::Serialize> serde::Serialize for Either<A, B> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::A(a) => a.serialize(s),
            Self::B(b) => b.serialize(s),
        }
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Writes the text decode of one function, with its entries' tag owners when given.
fn write_report(
    r: &FunctionReport,
    owners: Option<&FnOwners>,
    out: &mut impl Write,
) -> std::io::Result<()> {
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
    write_entries(r, owners, out)?;
    write_upstream(r, out)?;
    write_enable(r, out)
}

fn write_entries(
    r: &FunctionReport,
    owners: Option<&FnOwners>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let t = &r.tph;
    if t.entries.is_empty() && t.entries_note.is_none() {
        return writeln!(out, "\tST table entries: none");
    }
    writeln!(out, "\tST table entries ({}):", t.table_location)?;
    if let Some(o) = owners.filter(|_| !t.entries.is_empty()) {
        writeln!(out, "\t\ttag owners: {}", o.summary)?;
        if let Some(note) = o.note.as_ref().filter(|_| o.width.is_some()) {
            writeln!(out, "\t\tnote: {note}")?;
        }
    }
    for run in runs(t, owners) {
        let at = match run.first == run.last {
            true => format!("{}", run.first),
            false => format!("{}-{}", run.first, run.last),
        };
        let who = run.who.map(|w| format!("  {w}")).unwrap_or_default();
        writeln!(out, "\t\t[{at}] {:#06x}{who}", run.st)?;
    }
    if let Some(note) = &t.entries_note {
        writeln!(out, "\t\tnote: {note}")?;
    }
    Ok(())
}

/// Consecutive entries with the same tag and owners, printed as one line.
struct Run {
    first: u16,
    last: u16,
    st: u16,
    who: Option<String>,
}

fn runs(t: &tph_report::report::TphReport, owners: Option<&FnOwners>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (i, e) in t.entries.iter().enumerate() {
        let who = owners.and_then(|o| o.text(i, e.st));
        match runs.last_mut() {
            Some(r) if r.st == e.st && r.who == who && r.last.checked_add(1) == Some(e.index) => {
                r.last = e.index;
            }
            _ => runs.push(Run {
                first: e.index,
                last: e.index,
                st: e.st,
                who,
            }),
        }
    }
    runs
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

/// Firmware answers for the UIDs asked, reversed into tag -> owners at both widths.
struct OwnerSource {
    /// The source as a phrase: `firmware table FILE`, ...
    label: String,
    /// The UIDs asked, sorted.
    uids: Vec<u32>,
    /// Owners of each 8-bit tag.
    map8: OwnerMap,
    /// Owners of each 16-bit tag.
    map16: OwnerMap,
}

impl OwnerSource {
    fn map(&self, w: Width) -> &OwnerMap {
        match w {
            Width::Bits8 => &self.map8,
            Width::Bits16 => &self.map16,
        }
    }
}

/// A loaded firmware source, before any UID is asked.
struct Firmware {
    source: Arc<dyn SteeringTagSource>,
    label: String,
    /// The MADT's UIDs (for a folder of tables with an APIC file).
    madt_uids: Option<Vec<u32>>,
}

/// `--uids` or `--cpus` as a list, checked before anything is read.
fn explicit_uids(a: &OwnerArgs) -> Result<Option<Vec<u32>>, CliError> {
    match (&a.uids, a.cpus) {
        (Some(list), _) => tagmap::parse_uids(list)
            .map(Some)
            .map_err(|e| CliError::new("--uids", e)),
        (None, Some(0)) => Err(CliError::new("--cpus", "must be at least 1")),
        (None, Some(n)) if usize::try_from(n).map_or(true, |n| n > tagmap::MAX_UIDS) => Err(
            CliError::new("--cpus", format!("more than {} UIDs", tagmap::MAX_UIDS)),
        ),
        (None, Some(n)) => Ok(Some((0..n).collect())),
        (None, None) => Ok(None),
    }
}

/// Loads the firmware the arguments name (the emulated host's default with `--emulated`
/// alone) and asks it about every UID; `None` without any firmware.
/// The tag owners' source, as far as the arguments ask for one.
enum Owners {
    /// No firmware asked for.
    None,
    /// The firmware has no TPH `_DSM` (said on stderr): the asked-for tags are absent.
    NoDsm,
    /// Answers, and whether every UID got one.
    Some(OwnerSource, bool),
}

fn owner_source(
    a: &OwnerArgs,
    emulated: bool,
    explicit: Option<Vec<u32>>,
) -> Result<Owners, CliError> {
    let fw = match firmware(a, emulated)? {
        Some(Some(fw)) => fw,
        Some(None) => return Ok(Owners::NoDsm),
        None if explicit.is_some() => {
            return Err(CliError::new(
                "--uids/--cpus",
                "need --firmware, --tables or --emulated",
            ));
        }
        None => return Ok(Owners::None),
    };
    let uids = explicit
        .or(fw.madt_uids)
        .unwrap_or_else(|| (0..DEFAULT_CPUS).collect());
    let answers = tagmap::query(fw.source.as_ref(), &uids);
    for line in tagmap::failure_lines(&answers.failed) {
        eprintln!("tphctl: firmware lookup failed: {line}");
    }
    let source = OwnerSource {
        label: fw.label,
        map8: tagmap::owner_map(&answers.ok, Width::Bits8),
        map16: tagmap::owner_map(&answers.ok, Width::Bits16),
        uids,
    };
    Ok(Owners::Some(source, answers.failed.is_empty()))
}

/// The firmware the arguments name: `None` when none, `Some(None)` when it has no TPH `_DSM`.
fn firmware(a: &OwnerArgs, emulated: bool) -> Result<Option<Option<Firmware>>, CliError> {
    match (&a.firmware, &a.tables) {
        (Some(path), _) => firmware_path(path).map(Some),
        (None, Some(dir)) => firmware_as(dir, FirmwareKind::Dir, Vec::new()).map(Some),
        (None, None) if emulated => Ok(Some(Some(Firmware {
            source: Arc::new(TableSource::default_for_all()),
            label: "the emulated host's default firmware".into(),
            madt_uids: None,
        }))),
        (None, None) => Ok(None),
    }
}

/// `--firmware PATH`: whatever `tph_acpi::firmware` recognises the path as.
fn firmware_path(path: &Path) -> Result<Option<Firmware>, CliError> {
    let context = format!("reading firmware {}", path.display());
    let (kind, bytes) = firmware::kind_of(path).map_err(|e| CliError::new(context, e))?;
    firmware_as(path, kind, bytes)
}

/// Opens `path` as `kind`; a folder also gives the MADT's UIDs. `None` (said on stderr)
/// when no host bridge implements the TPH `_DSM`.
fn firmware_as(
    path: &Path,
    kind: FirmwareKind,
    bytes: Vec<u8>,
) -> Result<Option<Firmware>, CliError> {
    let context = format!("reading {} {}", kind.noun(), path.display());
    let fw = match firmware::open_as(path, kind, bytes) {
        Ok(fw) => fw,
        Err(e @ tph_acpi::FirmwareError::NoTphDsm { .. }) => {
            eprintln!("tphctl: {context}: {e}");
            return Ok(None);
        }
        Err(e) => return Err(CliError::new(context, e)),
    };
    for s in &fw.skipped {
        eprintln!("tphctl: warning: {s}");
    }
    let madt_uids = match kind {
        FirmwareKind::Dir => madt_uids(path)?,
        _ => None,
    };
    Ok(Some(Firmware {
        source: fw.source,
        label: fw.label,
        madt_uids,
    }))
}

/// The usable processors' UIDs from the first `APIC*` file in `dir`; `None` (with a warning)
/// when there is none.
fn madt_uids(dir: &Path) -> Result<Option<Vec<u32>>, CliError> {
    let Some(path) = madt::find_in_dir(dir) else {
        eprintln!(
            "tphctl: warning: no MADT (APIC*) in {}: asking UIDs 0-{}",
            dir.display(),
            DEFAULT_CPUS - 1
        );
        return Ok(None);
    };
    let context = format!("reading the MADT {}", path.display());
    let bytes = firmware::read_bounded(&path).map_err(|e| CliError::new(&context, e))?;
    let cpus = madt::parse(&bytes).map_err(|e| CliError::new(&context, e))?;
    let uids = madt::usable_uids(&cpus);
    if uids.is_empty() {
        return Err(CliError::new(context, "no usable processor"));
    }
    Ok(Some(uids))
}

/// One function's tag owners: per entry, the UIDs firmware gives its tag.
struct FnOwners {
    /// The tag width the kernel would use, `None` when it hands out no tags.
    width: Option<Width>,
    /// The `tag owners:` line.
    summary: String,
    /// Why there is no width, or a caveat about the owners.
    note: Option<String>,
    /// `owners[i]` belongs to `tph.entries[i]`.
    owners: Vec<Vec<Owner>>,
    /// The source as a phrase, and the UIDs asked as ranges.
    label: String,
    uids: String,
}

impl FnOwners {
    /// The annotation of entry `i` holding `tag`; `None` without a width.
    fn text(&self, i: usize, tag: u16) -> Option<String> {
        self.width?;
        let owners = self.owners.get(i).map_or(&[][..], Vec::as_slice);
        Some(tagmap::owners_text(tag, owners))
    }
}

/// The width `get_cpu_st` would use after a successful enable (pci-tph-core.md section 2,
/// enable step 5 and get_cpu_st), or why it hands out no tags.
fn width_of(r: &FunctionReport) -> Result<(Width, u8), String> {
    match (r.enable.ok, r.enable.requester_type) {
        (true, Some(t)) => Width::for_requester_type(t).map(|w| (w, t)).ok_or_else(|| {
            format!("requester type {t} is reserved: the kernel gives tag 0 to every CPU")
        }),
        _ => Err("enable would fail, so the kernel hands out no tags".into()),
    }
}

fn annotate(r: &FunctionReport, src: &OwnerSource) -> FnOwners {
    let uids = tagmap::uid_ranges(&src.uids);
    let (width, summary, note, owners) = match width_of(r) {
        Ok((w, t)) => {
            let summary = format!(
                "{}-bit tags (requester type {t}) from {}, UIDs {uids}",
                w.bits(),
                src.label
            );
            (Some(w), summary, rciep_note(r), entry_owners(r, src.map(w)))
        }
        Err(why) => (None, format!("unknown: {why}"), Some(why), Vec::new()),
    };
    FnOwners {
        width,
        summary,
        note,
        owners,
        label: src.label.clone(),
        uids,
    }
}

fn entry_owners(r: &FunctionReport, map: &OwnerMap) -> Vec<Vec<Owner>> {
    let owners = |st| tagmap::owners(map, st).to_vec();
    r.tph.entries.iter().map(|e| owners(e.st)).collect()
}

/// `get_cpu_st` needs the root port to find the host bridge (pci-tph-core.md section 2), so
/// the kernel gives an RCiEP no tag at all (ENODEV).
fn rciep_note(r: &FunctionReport) -> Option<String> {
    (r.port_type == Some("rc_integrated_endpoint")).then(|| {
        "an RCiEP has no root port, so the kernel's get_cpu_st fails (ENODEV) for it; \
         these tags did not come from that lookup; owners are matched against the firmware answers directly"
            .to_owned()
    })
}

/// The `show --json` object of one function without owner annotations.
pub(super) fn function_json(r: &FunctionReport) -> Result<serde_json::Value, serde_json::Error> {
    report_json(r, None)
}

/// The `show --json` object of one function: the report, `tph_status`, `0x` strings beside
/// the registers and IDs, and the owner fields when annotated.
fn report_json(
    r: &FunctionReport,
    owners: Option<&FnOwners>,
) -> Result<serde_json::Value, serde_json::Error> {
    let mut v = serde_json::to_value(r)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("tph_status".into(), "present".into());
        obj.insert("vendor_id_hex".into(), hex16(r.vendor_id).into());
        obj.insert("device_id_hex".into(), hex16(r.device_id).into());
    }
    let Some(tph) = v.get_mut("tph").and_then(|t| t.as_object_mut()) else {
        return Ok(v);
    };
    // Control's `raw_hex` and the entries' `st_hex` come with their shared serialisers
    // (`tph_report::report::{ControlReport, EntryReport}`).
    tph.insert("capability_hex".into(), hex32(r.tph.capability).into());
    let Some(o) = owners else {
        return Ok(v);
    };
    let Some(tph) = v.get_mut("tph").and_then(|t| t.as_object_mut()) else {
        return Ok(v);
    };
    tph.insert("owners_width".into(), o.width.map(Width::bits).into());
    tph.insert("owners_note".into(), o.note.clone().into());
    tph.insert("owners_source".into(), o.label.clone().into());
    tph.insert("owners_uids".into(), o.uids.clone().into());
    let entries = tph.get_mut("entries").and_then(|e| e.as_array_mut());
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        annotate_entry_json(entry, o, i)?;
    }
    Ok(v)
}

fn annotate_entry_json(
    entry: &mut serde_json::Value,
    o: &FnOwners,
    i: usize,
) -> Result<(), serde_json::Error> {
    let owners = o.owners.get(i).map_or(&[][..], Vec::as_slice);
    let tag = entry.get("st").and_then(serde_json::Value::as_u64);
    let state = match (o.width, tag.and_then(|t| u16::try_from(t).ok())) {
        (Some(_), Some(t)) => Some(TagState::of(t, owners).name()),
        _ => None,
    };
    if let Some(obj) = entry.as_object_mut() {
        obj.insert("owners".into(), serde_json::to_value(owners)?);
        obj.insert("owner_state".into(), state.into());
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
