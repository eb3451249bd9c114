//! What `tphctl list` / `show` report about a function's TPH state, as plain serialisable data
//! with stable field names (documented in `crates/tphctl/README-json.md`).

use tph_regs::express::PortType;
use tph_regs::machine::{Bdf, Function, Machine, Topology};
use tph_regs::msix::{vector_control_st, MsixCap};
use tph_regs::tph::{
    negotiate, CompleterSupport, ReqEnable, StLocation, StMode, TphControl, TphRequester, Upstream,
};
use tph_regs::Error;

use crate::rd32;

/// Reads MSI-X Vector Control words of a function (from a BAR), when the source can.
pub trait MsixTableReader {
    /// The first `count` Vector Control words of `bdf`'s MSI-X table.
    fn vector_controls(&self, bdf: Bdf, msix: &MsixCap, count: u16) -> Result<Vec<u32>, Error>;
}

/// A source that holds configuration space only (an lspci dump, an emulated snapshot).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConfigOnly;

impl MsixTableReader for ConfigOnly {
    fn vector_controls(&self, bdf: Bdf, msix: &MsixCap, _: u16) -> Result<Vec<u32>, Error> {
        Err(Error::MsixTable {
            bdf: bdf.to_string(),
            path: format!("BAR {}", msix.table_bir).into(),
            why: format!(
                "the table lives in BAR {} at offset {:#x}, and this source holds \
                 configuration space only",
                msix.table_bir, msix.table_offset
            ),
        })
    }
}

impl MsixTableReader for tph_regs::sysfs::Sysfs {
    fn vector_controls(&self, bdf: Bdf, msix: &MsixCap, count: u16) -> Result<Vec<u32>, Error> {
        self.read_vector_controls(bdf, msix, count)
    }
}

/// Everything reported about one function with a TPH Requester capability.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FunctionReport {
    /// `DDDD:BB:DD.F`.
    pub bdf: String,
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// PCI Express device/port type in snake case, `null` without the capability.
    pub port_type: Option<&'static str>,
    /// The TPH Requester capability.
    pub tph: TphReport,
    /// The root port above the function and its completer support.
    pub root_port: Option<RootPortReport>,
    /// What the kernel would negotiate on `enable`.
    pub enable: EnableReport,
}

/// The TPH Requester capability, decoded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TphReport {
    /// Offset of the capability.
    pub offset: u16,
    /// Capability version.
    pub version: u8,
    /// Raw Capability register.
    pub capability: u32,
    /// Bit 0.
    pub no_st_mode: bool,
    /// Bit 1.
    pub interrupt_vector_mode: bool,
    /// Bit 2.
    pub device_specific_mode: bool,
    /// Bit 8.
    pub extended_requester: bool,
    /// `none`, `capability`, `msix` or `reserved`.
    pub table_location: &'static str,
    /// ST Table Size field plus one.
    pub table_size: u16,
    /// The Control register.
    pub control: ControlReport,
    /// ST table entries (capability or MSI-X); empty when not available.
    pub entries: Vec<EntryReport>,
    /// Why entries are missing or incomplete, when they are.
    pub entries_note: Option<String>,
}

/// The Control register, decoded: the one JSON shape of Control in every `tphctl` output
/// (`list`, `show`, `session`, `vm`), built by [`ControlReport::from_bits`]. Serialised as
/// `{raw, raw_hex, mode, mode_field, requester_enable, requester_enable_field}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlReport {
    /// Raw register.
    pub raw: u32,
    /// `no_st`, `interrupt_vector`, `device_specific` or `reserved`.
    pub mode: &'static str,
    /// Bits 2:0.
    pub mode_field: u8,
    /// `disabled`, `tph`, `reserved` or `tph_ext`.
    pub requester_enable: &'static str,
    /// Bits 9:8.
    pub requester_enable_field: u8,
}

impl ControlReport {
    /// The register `bits`, decoded.
    pub fn from_bits(bits: u32) -> Self {
        let c = TphControl::from_bits(bits);
        Self {
            raw: bits,
            mode: mode_name(c.mode),
            mode_field: c.mode.field(),
            requester_enable: enable_name(c.enable),
            requester_enable_field: c.enable.field(),
        }
    }
}

impl serde::Serialize for ControlReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ControlReport", 6)?;
        st.serialize_field("raw", &self.raw)?;
        st.serialize_field("raw_hex", &format!("{:#010x}", self.raw))?;
        st.serialize_field("mode", self.mode)?;
        st.serialize_field("mode_field", &self.mode_field)?;
        st.serialize_field("requester_enable", self.requester_enable)?;
        st.serialize_field("requester_enable_field", &self.requester_enable_field)?;
        st.end()
    }
}

/// One ST table entry: the one JSON shape of a table entry in every `tphctl` output, built by
/// [`EntryReport::table`] from raw tags. Serialised as `{index, st, st_hex}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryReport {
    /// Entry (or MSI-X vector) index.
    pub index: u16,
    /// The 16-bit steering tag.
    pub st: u16,
}

impl EntryReport {
    /// The entries of a table holding `tags`, indexed from 0.
    pub fn table(tags: &[u16]) -> Vec<Self> {
        indexed(tags.iter().copied())
    }
}

impl serde::Serialize for EntryReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EntryReport", 3)?;
        st.serialize_field("index", &self.index)?;
        st.serialize_field("st", &self.st)?;
        st.serialize_field("st_hex", &format!("{:#06x}", self.st))?;
        st.end()
    }
}

/// The root port above a function.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RootPortReport {
    /// `DDDD:BB:DD.F`.
    pub bdf: String,
    /// DevCap2 TPH Completer Supported: `none`, `tph`, `reserved`, `tph_ext`; `null` when
    /// DevCap2 could not be read.
    pub completer: Option<&'static str>,
}

/// The outcome of the enable-time negotiation (pci-tph-core.md section 2, enable steps 5-6).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EnableReport {
    /// Whether enable would succeed for a supported mode (false when no mode is supported).
    pub ok: bool,
    /// Requester type written to Control bits 9:8 on success.
    pub requester_type: Option<u8>,
    /// The same as a name: `tph`, `tph_ext` or `reserved`.
    pub requester_enable: Option<&'static str>,
    /// Why enable would fail, or a warning about a reserved result.
    pub reason: Option<String>,
    /// Mode names (as in `control.mode`) the capability accepts.
    pub modes: Vec<&'static str>,
}

/// Snake-case name of a port type.
pub fn port_type_name(p: PortType) -> &'static str {
    match p {
        PortType::Endpoint => "endpoint",
        PortType::LegacyEndpoint => "legacy_endpoint",
        PortType::RootPort => "root_port",
        PortType::UpstreamPort => "upstream_port",
        PortType::DownstreamPort => "downstream_port",
        PortType::PcieToPciBridge => "pcie_to_pci_bridge",
        PortType::PciToPcieBridge => "pci_to_pcie_bridge",
        PortType::RcIntegratedEndpoint => "rc_integrated_endpoint",
        PortType::RcEventCollector => "rc_event_collector",
        PortType::Reserved(_) => "reserved",
        // A port type tph-regs decodes and this crate does not name yet.
        _ => "unknown",
    }
}

/// Name of a table location.
pub fn location_name(l: StLocation) -> &'static str {
    match l {
        StLocation::None => "none",
        StLocation::Capability => "capability",
        StLocation::MsiX => "msix",
        StLocation::Reserved(_) => "reserved",
        _ => "unknown",
    }
}

/// Name of an ST mode.
pub fn mode_name(m: StMode) -> &'static str {
    match m {
        StMode::NoSt => "no_st",
        StMode::InterruptVector => "interrupt_vector",
        StMode::DeviceSpecific => "device_specific",
        StMode::Reserved(_) => "reserved",
        _ => "unknown",
    }
}

/// Name of a requester enable value.
pub fn enable_name(e: ReqEnable) -> &'static str {
    match e {
        ReqEnable::Disabled => "disabled",
        ReqEnable::Tph => "tph",
        ReqEnable::Reserved => "reserved",
        ReqEnable::ExtTph => "tph_ext",
        _ => "unknown",
    }
}

/// Name of a completer support value.
pub fn completer_name(c: CompleterSupport) -> &'static str {
    match c {
        CompleterSupport::None => "none",
        CompleterSupport::Tph => "tph",
        CompleterSupport::Reserved => "reserved",
        CompleterSupport::TphAndExt => "tph_ext",
        _ => "unknown",
    }
}

/// Reports for every function with a TPH capability, in address order. Functions whose
/// capability lies beyond the bytes read are skipped (see [`report_all`] for the errors).
pub fn report_machine(m: &Machine, msix: &dyn MsixTableReader) -> Vec<FunctionReport> {
    report_all(m, msix)
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .collect()
}

/// Reports (or the decode error) for every function with a TPH capability, in address order.
pub fn report_all(
    m: &Machine,
    msix: &dyn MsixTableReader,
) -> Vec<(Bdf, Result<FunctionReport, Error>)> {
    scan(m, msix).reports
}

/// Whether a function has a TPH Requester capability, as far as the bytes read can tell.
///
/// Deliberately exhaustive: present, absent, or cannot tell covers every case; what was not
/// read is [`Unread`], which is non_exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TphPresence {
    /// The capability is at this offset.
    Present(usize),
    /// The capability lists were read to their end without it (or the function is
    /// conventional PCI, which has no extended space).
    Absent,
    /// The bytes read end before the answer: this part was not read.
    Unknown(Unread),
}

/// The part of configuration space a verdict needed but the source did not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unread {
    /// The capability list (fewer than 64 bytes, or a list running past the bytes read).
    Capabilities,
    /// The extended space (bytes 0x100-0xfff) of a PCI Express function.
    Extended,
}

impl Unread {
    /// Snake-case name (the JSON `unread`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Capabilities => "capabilities",
            Self::Extended => "extended",
        }
    }

    /// The missing part as a phrase.
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Capabilities => "the capability list was not read (only the first bytes were)",
            Self::Extended => "the extended configuration space (0x100-0xfff) was not read",
        }
    }
}

/// The verdict on `cfg`: present, absent, or unknown because the bytes end too early.
pub fn tph_presence(cfg: &[u8]) -> TphPresence {
    let ext = tph_regs::caps::walk_ext_caps(cfg);
    if let Some(c) = ext.find(tph_regs::caps::EXT_CAP_ID_TPH) {
        return TphPresence::Present(usize::from(c.offset));
    }
    if !matches!(ext.end, tph_regs::caps::ChainEnd::Truncated { .. }) {
        return TphPresence::Absent;
    }
    let std = tph_regs::caps::walk_caps(cfg);
    // PCI Express and PCI-X 2.0 functions have an extended space; others have none.
    let extended = [tph_regs::caps::CAP_ID_EXP, CAP_ID_PCIX]
        .iter()
        .any(|&id| std.find(u16::from(id)).is_some());
    if extended {
        TphPresence::Unknown(Unread::Extended)
    } else if std.is_complete() {
        TphPresence::Absent
    } else {
        TphPresence::Unknown(Unread::Capabilities)
    }
}

/// How many leading bytes of `cfg` [`tph_presence`] and [`report_in`] read for an endpoint:
/// the standard space, every extended capability header the walk visits or points at, and the
/// TPH capability's registers and table. Bytes past it can be dropped without changing either
/// answer (a walk that runs off the end keeps everything).
pub fn report_extent(cfg: &[u8]) -> usize {
    use tph_regs::caps::{walk_ext_caps, ChainEnd, EXT_START};
    let chain = walk_ext_caps(cfg);
    if matches!(chain.end, ChainEnd::Truncated { .. }) {
        return cfg.len();
    }
    let header_end = |at: usize| at.saturating_add(4);
    let mut end = header_end(EXT_START);
    for c in &chain.caps {
        let at = usize::from(c.offset);
        end = end.max(header_end(at));
        let next = rd32(cfg, at).map_or(0, |h| (h >> 20) as usize & 0xffc);
        end = end.max(header_end(next));
        if c.id == tph_regs::caps::EXT_CAP_ID_TPH {
            end = end.max(tph_end(cfg, at));
        }
    }
    end.min(cfg.len())
}

/// End of the TPH capability at `at`: its registers and the entries of a table in it.
fn tph_end(cfg: &[u8], at: usize) -> usize {
    use tph_regs::tph::{TphCapability, TPH_CAP, TPH_CAP_TABLE_MAX, TPH_TABLE};
    let cap = rd32(cfg, at.saturating_add(TPH_CAP)).map(TphCapability::from_bits);
    let entries = match cap {
        Some(c) if c.location == StLocation::Capability => c.table_size.min(TPH_CAP_TABLE_MAX),
        _ => 0,
    };
    at.saturating_add(TPH_TABLE + 2 * usize::from(entries))
}

/// PCI-X capability ID (a PCI-X 2.0 function has an extended space too).
const CAP_ID_PCIX: u8 = 0x07;

/// Everything `list` and `show` need from one machine, in one linear pass.
#[non_exhaustive]
pub struct MachineScan {
    /// Reports (or the decode error) of the functions with a TPH capability, by address.
    pub reports: Vec<(Bdf, Result<FunctionReport, Error>)>,
    /// Functions whose TPH verdict is unknown because the source lacks bytes, by address.
    pub unknown: Vec<(Bdf, Unread)>,
}

/// Scans every function: a report for each TPH capability, the unknown verdicts apart.
pub fn scan(m: &Machine, msix: &dyn MsixTableReader) -> MachineScan {
    let topo = m.topology();
    let mut out = MachineScan {
        reports: Vec::new(),
        unknown: Vec::new(),
    };
    for f in m.sorted() {
        match tph_presence(&f.config) {
            TphPresence::Present(_) => {
                if let Some(r) = report_in(&topo, f, msix) {
                    out.reports.push((f.bdf, r));
                }
            }
            TphPresence::Unknown(u) => out.unknown.push((f.bdf, u)),
            TphPresence::Absent => {}
        }
    }
    out
}

/// The report for `f`, `None` when it has no TPH capability.
pub fn report_function(
    m: &Machine,
    f: &Function,
    msix: &dyn MsixTableReader,
) -> Option<Result<FunctionReport, Error>> {
    report_in(&m.topology(), f, msix)
}

/// [`report_function`] with the machine's topology built once by the caller.
pub fn report_in(
    t: &Topology<'_>,
    f: &Function,
    msix: &dyn MsixTableReader,
) -> Option<Result<FunctionReport, Error>> {
    let tph = match TphRequester::find(&f.config)? {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let (upstream, root_port) = upstream_of(t, f);
    let header = f.header();
    Some(Ok(FunctionReport {
        bdf: f.bdf.to_string(),
        vendor_id: header.map_or(0, |h| h.vendor_id),
        device_id: header.map_or(0, |h| h.device_id),
        port_type: f.port_type().map(port_type_name),
        enable: enable_report(&tph, upstream),
        tph: tph_report(f, &tph, msix),
        root_port,
    }))
}

/// Where `f` sits for the completer check, and its root port for the report.
pub fn upstream_of(t: &Topology<'_>, f: &Function) -> (Option<Upstream>, Option<RootPortReport>) {
    if f.is_rciep() {
        return (Some(Upstream::RcIntegrated), None);
    }
    let Some(rp) = t.root_port_of(f) else {
        return (Some(Upstream::NoRootPort), None);
    };
    let completer = t
        .bridge(rp)
        .and_then(Function::express)
        .and_then(|e| e.completer());
    let report = RootPortReport {
        bdf: rp.to_string(),
        completer: completer.map(completer_name),
    };
    (completer.map(Upstream::RootPort), Some(report))
}

fn refused(reason: String, modes: Vec<&'static str>) -> EnableReport {
    EnableReport {
        ok: false,
        requester_type: None,
        requester_enable: None,
        reason: Some(reason),
        modes,
    }
}

fn enable_report(tph: &TphRequester, upstream: Option<Upstream>) -> EnableReport {
    let modes: Vec<&'static str> = [
        StMode::NoSt,
        StMode::InterruptVector,
        StMode::DeviceSpecific,
    ]
    .into_iter()
    .filter(|m| tph.cap.modes() & (1 << m.field()) != 0)
    .map(mode_name)
    .collect();
    if modes.is_empty() {
        return refused(NO_MODE_NOTE.to_owned(), modes);
    }
    let Some(upstream) = upstream else {
        return refused(
            "the root port's Device Capabilities 2 register was not read".into(),
            modes,
        );
    };
    match negotiate(&tph.cap, upstream) {
        Ok(t) => EnableReport {
            ok: true,
            requester_type: Some(t.field()),
            requester_enable: Some(enable_name(t)),
            reason: (t == ReqEnable::Reserved).then(|| RESERVED_NOTE.to_owned()),
            modes,
        },
        Err(e) => refused(e.to_string(), modes),
    }
}

const NO_MODE_NOTE: &str = "the capability supports no ST mode (bits 2:0 clear), so every \
                            enable fails the mode check (EINVAL)";

const RESERVED_NOTE: &str = "the root port reports the reserved completer value 2, so the core \
                             would write the reserved requester type 2";

fn tph_report(f: &Function, tph: &TphRequester, msix: &dyn MsixTableReader) -> TphReport {
    let (entries, entries_note) = entries(f, tph, msix);
    let c = &tph.control;
    TphReport {
        offset: tph.offset,
        version: tph.version,
        capability: tph.cap.to_bits(),
        no_st_mode: tph.cap.no_st,
        interrupt_vector_mode: tph.cap.iv,
        device_specific_mode: tph.cap.ds,
        extended_requester: tph.cap.ext,
        table_location: location_name(tph.cap.location),
        table_size: tph.cap.table_size,
        control: ControlReport::from_bits(c.to_bits()),
        entries,
        entries_note,
    }
}

fn indexed(sts: impl Iterator<Item = u16>) -> Vec<EntryReport> {
    sts.enumerate()
        .map(|(i, st)| EntryReport {
            index: i as u16,
            st,
        })
        .collect()
}

fn entries(
    f: &Function,
    tph: &TphRequester,
    msix: &dyn MsixTableReader,
) -> (Vec<EntryReport>, Option<String>) {
    match tph.cap.location {
        StLocation::Capability => (indexed(tph.table.iter().copied()), capability_note(tph)),
        StLocation::MsiX => msix_entries(f, msix),
        StLocation::None => (Vec::new(), None),
        StLocation::Reserved(n) => (Vec::new(), Some(format!("reserved table location {n}"))),
        other => (
            Vec::new(),
            Some(format!("table location {other:?} unknown to tph-report")),
        ),
    }
}

fn capability_note(tph: &TphRequester) -> Option<String> {
    if tph.table_truncated {
        return Some(format!(
            "the dump ends after {} of the table's entries",
            tph.table.len()
        ));
    }
    (tph.cap.table_size > tph_regs::tph::TPH_CAP_TABLE_MAX).then(|| {
        format!(
            "the size field claims {} entries; a table in the capability holds at most 64",
            tph.cap.table_size
        )
    })
}

fn msix_entries(f: &Function, reader: &dyn MsixTableReader) -> (Vec<EntryReport>, Option<String>) {
    let Some(msix) = MsixCap::find(&f.config) else {
        return (
            Vec::new(),
            Some("the table is in MSI-X, but the function has no MSI-X capability".into()),
        );
    };
    match reader.vector_controls(f.bdf, &msix, msix.table_size) {
        Ok(vc) => (indexed(vc.into_iter().map(vector_control_st)), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixture builder: root port 00:01.0 (completer field `completer`) above endpoint 01:00.0
    /// whose TPH Capability register is `cap`.
    fn machine(completer: u32, cap: u32) -> Machine {
        let mut port = vec![0u8; 256];
        port[0x06] = 0x10;
        port[0x0e] = 1;
        port[0x19] = 1;
        port[0x1a] = 1;
        port[0x34] = 0x40;
        port[0x40] = 0x10;
        port[0x42] = 0x42;
        port[0x64..0x68].copy_from_slice(&(completer << 12).to_le_bytes());
        let mut ep = vec![0u8; 4096];
        ep[0x06] = 0x10;
        ep[0x34] = 0x40;
        ep[0x40] = 0x10;
        ep[0x42] = 0x02;
        ep[0x100..0x104].copy_from_slice(&0x0001_0017u32.to_le_bytes());
        ep[0x104..0x108].copy_from_slice(&cap.to_le_bytes());
        let f = |b: &str, config| Function::new(b.parse().expect("valid"), config);
        Machine::new(vec![f("00:01.0", port), f("01:00.0", ep)])
    }

    #[test]
    fn control_json_has_raw_hex_and_names_reserved_values() {
        // Mode 5 and requester enable 2 are reserved.
        let c = ControlReport::from_bits(0x0000_0205);
        let v = serde_json::to_value(&c).expect("serialises");
        assert_eq!(
            v,
            serde_json::json!({
                "raw": 0x205, "raw_hex": "0x00000205",
                "mode": "reserved", "mode_field": 5,
                "requester_enable": "reserved", "requester_enable_field": 2,
            })
        );
    }

    #[test]
    fn entry_table_json_is_indexed_with_st_hex() {
        let v = serde_json::to_value(EntryReport::table(&[0x8002, 7])).expect("serialises");
        assert_eq!(
            v,
            serde_json::json!([
                {"index": 0, "st": 0x8002, "st_hex": "0x8002"},
                {"index": 1, "st": 7, "st_hex": "0x0007"},
            ])
        );
    }

    #[test]
    fn report_reserved_completer_succeeds_with_reserved_type_and_warning() {
        // DS + extended, no table.
        let r = report_machine(&machine(2, 0x0000_0105), &ConfigOnly);
        assert_eq!(r.len(), 1);
        assert!(r[0].enable.ok);
        assert_eq!(r[0].enable.requester_type, Some(2));
        assert_eq!(r[0].enable.requester_enable, Some("reserved"));
        assert!(r[0]
            .enable
            .reason
            .as_deref()
            .is_some_and(|s| s.contains("reserved")));
    }

    #[test]
    fn report_capability_table_over_64_entries_is_noted() {
        // DS, table in capability, size field 99 (100 entries).
        let r = report_machine(&machine(3, 0x0063_0205), &ConfigOnly);
        assert_eq!(r[0].tph.entries.len(), 64);
        assert!(r[0]
            .tph
            .entries_note
            .as_deref()
            .is_some_and(|s| s.contains("at most 64")));
    }

    #[test]
    fn report_msix_table_from_config_only_source_explains() {
        // IV, table in MSI-X, but the endpoint has no MSI-X capability.
        let r = report_machine(&machine(3, 0x0000_0403), &ConfigOnly);
        assert!(r[0].tph.entries.is_empty());
        let note = r[0].tph.entries_note.as_deref().unwrap_or_default();
        assert!(note.contains("no MSI-X capability"), "{note}");
    }
}
