//! `tphctl st-map`: the steering tag firmware gives each processor, from the host bridge
//! `_DSM` (revision 7, function 0xF) run by the `tph-acpi` AML interpreter.

use std::io::Write;
use std::path::{Path, PathBuf};

use tph_acpi::aml::Aml;
use tph_acpi::dsm::{self, HostBridge};
use tph_acpi::madt::{self, CpuUid};
use tph_acpi::{firmware, MemType, StInfo};

use super::tagmap::parse_uids;
use super::{CliError, CmdResult, Found};

/// This host's ACPI tables (readable by root only).
const SYS_TABLES: &str = "/sys/firmware/acpi/tables";

// Arguments of `tphctl st-map`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    after_long_help = "Reads the DSDT and SSDTs (and the MADT, APIC, for the processor \
    list) from --tables DIR, or from /sys/firmware/acpi/tables, which needs root. Each table \
    file may hold at most 16 MiB. JSON field names: crates/tphctl/README-json.md.\n\n\
    Exit status: 0 every UID got an answer; 1 no host bridge implements the TPH _DSM (said \
    on stderr; JSON prints []); 2 an error, or a lookup failed for some UID (its row says \
    why, and stderr counts them). A closed pipe on standard output ends the output quietly \
    with status 0."
)]
pub struct Args {
    /// Folder of DSDT/SSDT files (.aml or .dat; names starting DSDT or SSDT) and optionally
    /// the MADT (a file named APIC*) [default: /sys/firmware/acpi/tables].
    #[arg(long, value_name = "DIR")]
    tables: Option<PathBuf>,
    /// Processor UIDs to query, e.g. `0-15,32` [default: the processors in the MADT].
    #[arg(long, value_name = "LIST")]
    uids: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One processor's row. `error`, `vm` and `pm` are always there, null when they do not apply
/// (as `error` in `session` and `vm`); `cpu` only with a source that knows CPU numbers.
#[derive(serde::Serialize)]
struct Row {
    uid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<u32>,
    st_info: Option<String>,
    error: Option<String>,
    vm: Option<Half>,
    pm: Option<Half>,
}

/// One memory type's half of the result.
#[derive(serde::Serialize)]
struct Half {
    st_valid: bool,
    xst_valid: bool,
    ph_ignore: bool,
    st: u8,
    st_hex: String,
    xst: u16,
    xst_hex: String,
}

impl Half {
    fn new(v: StInfo, mem: MemType) -> Self {
        Self {
            st_valid: v.st_valid(mem),
            xst_valid: v.xst_valid(mem),
            ph_ignore: v.ph_ignore(mem),
            st: v.st(mem),
            st_hex: format!("{:#04x}", v.st(mem)),
            xst: v.xst(mem),
            xst_hex: format!("{:#06x}", v.xst(mem)),
        }
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> CmdResult {
    // Argument errors first, before any table is read.
    let uids = match &args.uids {
        Some(list) => Some(parse_uids(list).map_err(|e| CliError::new("--uids", e))?),
        None => None,
    };
    let dir = args.tables.clone().unwrap_or_else(|| SYS_TABLES.into());
    let context = match &args.tables {
        Some(d) => format!("reading tables from {}", d.display()),
        None => format!("reading {SYS_TABLES} (needs root)"),
    };
    let mut aml = firmware::load_dir(&dir).map_err(|e| CliError::new(context, e))?;
    for s in &aml.report().skipped {
        eprintln!("tphctl: warning: {s}");
    }
    let probe = dsm::probe(&mut aml);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| CliError::new("writing output", e);
    let Some(bridge) = probe.tph_bridge else {
        if args.json {
            writeln!(out, "[]").and_then(|()| out.flush()).map_err(io)?;
        }
        eprintln!("tphctl: st-map: {}", absent_text(&probe.bridges));
        return Ok(Found::No);
    };
    let cpus = match uids {
        Some(u) => u.into_iter().map(|u| (u, None)).collect(),
        None => processors(&args, &dir)?,
    };
    let rows: Vec<Row> = cpus.iter().map(|c| row(&mut aml, &bridge, c)).collect();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .map_err(io)?;
    } else {
        render_text(&mut out, &bridge, &rows).map_err(io)?;
    }
    out.flush().map_err(io)?;
    let failed: Vec<u32> = rows
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.uid)
        .collect();
    if failed.is_empty() {
        return Ok(Found::Yes);
    }
    eprintln!(
        "tphctl: st-map: the lookup failed for {} of {} UIDs ({})",
        failed.len(),
        rows.len(),
        super::tagmap::uid_ranges(&failed)
    );
    Ok(Found::Failed)
}

/// The UIDs the MADT names, with logical CPU numbers where known.
fn processors(args: &Args, dir: &Path) -> Result<Vec<(u32, Option<u32>)>, CliError> {
    let path = madt::find_in_dir(dir).ok_or_else(|| {
        let why = format!("no APIC file in {} (or give --uids)", dir.display());
        CliError::new("reading the MADT", why)
    })?;
    let context = format!("reading the MADT {}", path.display());
    let bytes = firmware::read_bounded(&path).map_err(|e| CliError::new(&context, e))?;
    let entries = madt::parse(&bytes).map_err(|e| CliError::new(&context, e))?;
    if args.tables.is_none() {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let map = madt::cpu_uids(Path::new("/sys/devices/system/cpu"), &info, &entries);
        if !map.is_empty() {
            return Ok(map
                .iter()
                .map(|&CpuUid { cpu, uid, .. }| (uid, Some(cpu)))
                .collect());
        }
    }
    Ok(madt::usable_uids(&entries)
        .into_iter()
        .map(|u| (u, None))
        .collect())
}

fn row(aml: &mut Aml, bridge: &HostBridge, &(uid, cpu): &(u32, Option<u32>)) -> Row {
    match dsm::query(aml, bridge, uid) {
        Ok(v) => Row {
            uid,
            cpu,
            st_info: Some(format!("0x{:016x}", v.0)),
            error: None,
            vm: Some(Half::new(v, MemType::Volatile)),
            pm: Some(Half::new(v, MemType::Persistent)),
        },
        Err(e) => Row {
            uid,
            cpu,
            st_info: None,
            error: Some(e.to_string()),
            vm: None,
            pm: None,
        },
    }
}

/// Why no row can be given: no host bridge, or none with the TPH `_DSM`.
fn absent_text(bridges: &[HostBridge]) -> String {
    match bridges {
        [] => "no PCI host bridge (PNP0A08/PNP0A03) found in the ACPI namespace".to_string(),
        _ => {
            let list: Vec<String> = bridges
                .iter()
                .map(|b| format!("{}{}", b.path, if b.has_dsm { "" } else { " (no _DSM)" }))
                .collect();
            format!(
                "host bridges found: {}; none implements the TPH _DSM (revision 7, function 0xF)",
                list.join(", ")
            )
        }
    }
}

fn flag(on: bool) -> char {
    if on {
        '+'
    } else {
        '-'
    }
}

fn half_text(h: &Half) -> String {
    format!(
        "ST {:#04x}{} XST {:#06x}{} PhIgnore{}",
        h.st,
        flag(h.st_valid),
        h.xst,
        flag(h.xst_valid),
        flag(h.ph_ignore)
    )
}

fn render_text(out: &mut impl Write, bridge: &HostBridge, rows: &[Row]) -> std::io::Result<()> {
    writeln!(
        out,
        "Host bridge {}: _DSM revision 7, function 0xF",
        bridge.path
    )?;
    // Columns as wide as the widest number, so UIDs past 9999 stay aligned.
    let digits = |n: u32| n.to_string().len();
    let uid_w = rows.iter().map(|r| digits(r.uid)).max().unwrap_or(1).max(4);
    let cpu_w = rows
        .iter()
        .filter_map(|r| r.cpu.map(digits))
        .max()
        .unwrap_or(1)
        .max(3);
    for r in rows {
        let who = match r.cpu {
            Some(c) => format!("cpu {c:<cpu_w$} uid {:<uid_w$}", r.uid),
            None => format!("uid {:<uid_w$}", r.uid),
        };
        match (&r.st_info, &r.vm, &r.pm) {
            (Some(raw), Some(vm), Some(pm)) => writeln!(
                out,
                "{who} st_info {raw}  VM: {}  PM: {}",
                half_text(vm),
                half_text(pm)
            )?,
            _ => writeln!(
                out,
                "{who} error: {}",
                r.error.as_deref().unwrap_or("unknown")
            )?,
        }
    }
    Ok(())
}
