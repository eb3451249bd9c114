//! The TPH steering-tag query (`docs/spec/firmware-dsm.md`), as the kernel makes it: the
//! host bridge above the device's root port (matched by `_SEG` and its root bus), function 0's
//! bitmap checked on every call as `acpi_check_dsm` does (an Integer or a Buffer; bits 0 and
//! 15 both set), then function 0xF per processor UID, decoded.

use std::path::Path;
use std::sync::Mutex;

use crate::aml::{Aml, Value};
use crate::{FirmwareError, HostBridgeId, StInfo, SteeringTagSource};

/// The PCI Firmware Specification `_DSM` UUID.
pub const PCI_DSM_UUID: &str = "E5C937D0-3553-4D7A-9117-EA4D19C3434D";
/// `_DSM` revision of the cache-locality TPH query.
pub const TPH_DSM_REVISION: u64 = 7;
/// `_DSM` function index of the steering-tag query.
pub const TPH_DSM_FUNCTION: u64 = 0xf;
/// Feature id 0 in Arg3: processor cache steering tag.
pub const FEATURE_PROCESSOR_CACHE: u64 = 0;

/// A UUID in ACPI's mixed-endian byte order (`ToUUID`): the first three groups little-endian,
/// the last two as written. `None` for malformed text.
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let [a, b, c, d, e] = groups.as_slice() else {
        return None;
    };
    if [a.len(), b.len(), c.len(), d.len(), e.len()] != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex = |s: &str| -> Option<Vec<u8>> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect()
    };
    let mut out = Vec::with_capacity(16);
    for (g, le) in [(a, true), (b, true), (c, true), (d, false), (e, false)] {
        let mut bytes = hex(g)?;
        if le {
            bytes.reverse();
        }
        out.extend(bytes);
    }
    out.try_into().ok()
}

/// The 32-bit EISA id encoding of a PNP id such as `PNP0A08` (as `EisaId()` compiles it).
pub fn eisa_id(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if b.len() != 7 || !b.get(..3)?.iter().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let l = |i: usize| u32::from(b.get(i).copied().unwrap_or(b'@') - 0x40);
    let hexv = u32::from_str_radix(text.get(3..)?, 16).ok()?;
    let v = (l(0) << 26) | (l(1) << 21) | (l(2) << 16) | hexv;
    Some(v.swap_bytes())
}

/// A PCI host bridge device found in the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostBridge {
    /// Namespace path, e.g. `\_SB_.PCI0`.
    pub path: String,
    /// Node id in the namespace.
    pub node: usize,
    /// Whether it has a `_DSM` method.
    pub has_dsm: bool,
    /// Its segment (`_SEG`) and root bus (the start of the bus range in `_CRS`, else `_BBN`);
    /// 0 when absent or not an Integer.
    pub id: HostBridgeId,
}

const BRIDGE_IDS: [&str; 2] = ["PNP0A08", "PNP0A03"];

fn id_matches(v: &Value) -> bool {
    match v {
        Value::Integer(i) => BRIDGE_IDS
            .iter()
            .any(|t| eisa_id(t).map(u64::from) == Some(*i)),
        Value::String(s) => BRIDGE_IDS.iter().any(|t| t.as_bytes() == s.as_slice()),
        Value::Package(p) => p.iter().any(id_matches),
        _ => false,
    }
}

/// Every device whose `_HID` or `_CID` is PNP0A08 or PNP0A03 (EISA-id integers or strings).
pub fn host_bridges(aml: &mut Aml) -> Vec<HostBridge> {
    let mut out = Vec::new();
    for dev in aml.devices() {
        let is_bridge = ["_HID", "_CID"].iter().any(|id| {
            let Some(n) = aml.child(dev, id) else {
                return false;
            };
            aml.evaluate_node(n, &[], None)
                .is_ok_and(|v| id_matches(&v))
        });
        if is_bridge {
            let has_dsm = aml.child(dev, "_DSM").is_some_and(|n| aml.is_method(n));
            let id = HostBridgeId {
                segment: integer_child(aml, dev, "_SEG") as u16,
                bus: root_bus(aml, dev),
            };
            out.push(HostBridge {
                path: aml.path(dev),
                node: dev,
                has_dsm,
                id,
            });
        }
    }
    out
}

/// The bridge's root bus as `acpi_pci_root_add` finds it: the start of the bus-number range
/// in `_CRS` (`try_get_root_bridge_busnr`), else `_BBN`, else 0.
fn root_bus(aml: &mut Aml, dev: usize) -> u8 {
    let crs = aml
        .child(dev, "_CRS")
        .and_then(|n| aml.evaluate_node(n, &[], None).ok());
    match crs {
        Some(Value::Buffer(b)) => bus_range_start(&b),
        _ => None,
    }
    .unwrap_or_else(|| integer_child(aml, dev, "_BBN") as u8)
}

/// The minimum of the first bus-number address space descriptor (Word 0x88, DWord 0x87 or
/// QWord 0x8A with resource type 2) of a resource template; `None` without one.
pub fn bus_range_start(template: &[u8]) -> Option<u8> {
    let mut at = 0usize;
    while let Some(&tag) = template.get(at) {
        if tag & 0x80 == 0 {
            if tag == 0x79 {
                return None; // end tag
            }
            at += 1 + usize::from(tag & 0x7); // small descriptor
            continue;
        }
        let len = usize::from(u16::from_le_bytes([
            *template.get(at + 1)?,
            *template.get(at + 2)?,
        ]));
        let body = template.get(at + 3..at + 3 + len)?;
        if let Some(min) = bus_minimum(tag, body) {
            return Some(min);
        }
        at += 3 + len;
    }
    None
}

/// The minimum of an address space descriptor body for bus numbers: resource type (byte 0) 2;
/// the minimum follows the granularity, each field as wide as the descriptor's words.
fn bus_minimum(tag: u8, body: &[u8]) -> Option<u8> {
    const BUS_NUMBER_RANGE: u8 = 2;
    let width = match tag {
        0x88 => 2,
        0x87 => 4,
        0x8a => 8,
        _ => return None,
    };
    if body.first() != Some(&BUS_NUMBER_RANGE) {
        return None;
    }
    body.get(3 + width).copied() // low byte of the minimum (buses are 0..=255)
}

/// The Integer value of `dev`'s child `name` (a name or a method), 0 when absent or not an
/// Integer (the kernel's default segment and bus).
fn integer_child(aml: &mut Aml, dev: usize, name: &str) -> u64 {
    let Some(n) = aml.child(dev, name) else {
        return 0;
    };
    match aml.evaluate_node(n, &[], None) {
        Ok(Value::Integer(v)) => v,
        _ => 0,
    }
}

fn dsm_args(function: u64, arg3: Vec<Value>) -> Vec<Value> {
    let uuid = uuid_bytes(PCI_DSM_UUID)
        .map(|b| b.to_vec())
        .unwrap_or_default();
    vec![
        Value::Buffer(uuid),
        Value::Integer(TPH_DSM_REVISION),
        Value::Integer(function),
        Value::Package(arg3),
    ]
}

fn eval_dsm(
    aml: &mut Aml,
    bridge: &HostBridge,
    function: u64,
    arg3: Vec<Value>,
) -> Result<Value, FirmwareError> {
    let dsm = aml
        .child(bridge.node, "_DSM")
        .ok_or_else(|| FirmwareError::NotFound(format!("{}._DSM", bridge.path)))?;
    aml.evaluate_node(dsm, &dsm_args(function, arg3), None)
}

/// `acpi_check_dsm(handle, guid, 7, 1 << 0xF)`: `bridge`'s `_DSM` function 0 (revision 7)
/// returns a bitmap as an Integer or a Buffer (its first 8 bytes, little-endian), and both
/// bit 0 ("other functions exist") and bit 15 are set. Any other result type: not supported.
pub fn supports_tph(aml: &mut Aml, bridge: &HostBridge) -> Result<bool, FirmwareError> {
    let mask = match eval_dsm(aml, bridge, 0, Vec::new())? {
        Value::Integer(v) => v,
        Value::Buffer(b) => b
            .iter()
            .take(8)
            .enumerate()
            .fold(0u64, |m, (i, byte)| m | u64::from(*byte) << (8 * i)),
        _ => 0,
    };
    let wanted = 1u64 | 1 << TPH_DSM_FUNCTION;
    Ok(mask & wanted == wanted)
}

/// The TPH query as the kernel makes it on every call: function 0 checked first
/// ([`supports_tph`]), then function 0xF for `uid`.
pub fn checked_query(
    aml: &mut Aml,
    bridge: &HostBridge,
    uid: u32,
) -> Result<StInfo, FirmwareError> {
    if !supports_tph(aml, bridge)? {
        return Err(FirmwareError::NotAdvertised(bridge.path.clone()));
    }
    query(aml, bridge, uid)
}

/// Evaluates function 0xF for processor `uid` and decodes the result.
pub fn query(aml: &mut Aml, bridge: &HostBridge, uid: u32) -> Result<StInfo, FirmwareError> {
    let arg3 = vec![
        Value::Integer(FEATURE_PROCESSOR_CACHE),
        Value::Integer(u64::from(uid)),
        Value::Integer(0),
    ];
    match eval_dsm(aml, bridge, TPH_DSM_FUNCTION, arg3)? {
        Value::Buffer(b) => StInfo::from_buffer(&b)
            .ok_or_else(|| FirmwareError::BadResult(format!("a {}-byte buffer", b.len()))),
        other => Err(FirmwareError::BadResult(other.type_name().into())),
    }
}

/// The result of probing firmware for the TPH `_DSM`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Probe {
    /// Every host bridge found.
    pub bridges: Vec<HostBridge>,
    /// The first bridge whose `_DSM` advertises function 0xF at revision 7.
    pub tph_bridge: Option<HostBridge>,
}

/// Finds the host bridges and the first one implementing the TPH query.
pub fn probe(aml: &mut Aml) -> Probe {
    let bridges = host_bridges(aml);
    let tph_bridge = bridges
        .iter()
        .filter(|b| b.has_dsm)
        .find(|b| supports_tph(aml, b).unwrap_or(false))
        .cloned();
    Probe {
        bridges,
        tph_bridge,
    }
}

/// Most bytes of all the definition blocks of one folder together (each file also within
/// [`crate::firmware::FIRMWARE_MAX_BYTES`]).
pub const TABLE_DIR_MAX_BYTES: usize = 64 << 20;

/// Reads every `DSDT*`/`SSDT*` file (any extension, e.g. `.aml`, `.dat`) in `dir`, sorted;
/// refused once they hold more than [`TABLE_DIR_MAX_BYTES`] together.
pub fn read_table_dir(dir: &Path) -> Result<Vec<Vec<u8>>, FirmwareError> {
    let io = |p: &Path, e: std::io::Error| FirmwareError::Io {
        path: p.display().to_string(),
        why: e.to_string(),
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_definition_table_file(p))
        .collect();
    paths.sort();
    let mut total = 0usize;
    let mut tables = Vec::with_capacity(paths.len());
    for p in &paths {
        let bytes = crate::firmware::read_bounded(p)?;
        total += bytes.len();
        if total > TABLE_DIR_MAX_BYTES {
            return Err(FirmwareError::Io {
                path: dir.display().to_string(),
                why: format!(
                    "its tables hold more than {TABLE_DIR_MAX_BYTES} bytes together (the limit)"
                ),
            });
        }
        tables.push(bytes);
    }
    Ok(tables)
}

fn is_definition_table_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_uppercase();
    // Special files too, so that reading them refuses them by name instead of ignoring them.
    !p.is_dir() && (name.starts_with("DSDT") || name.starts_with("SSDT"))
}

/// Firmware for the emulated host backed by real AML: answers [`SteeringTagSource`] queries
/// by running the `_DSM` of the host bridge asked for (by segment and root bus), checking
/// function 0 on every call as the kernel does.
#[derive(Debug)]
pub struct AmlSource {
    aml: Mutex<Aml>,
    bridge: HostBridge,
    bridges: Vec<HostBridge>,
}

impl AmlSource {
    /// Loads DSDT/SSDT tables and picks the first host bridge implementing the TPH query.
    pub fn from_tables(tables: &[&[u8]]) -> Result<Self, FirmwareError> {
        Self::from_aml(Aml::load(tables)?)
    }

    /// Loads every DSDT/SSDT file in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, FirmwareError> {
        let tables = read_table_dir(dir)?;
        let refs: Vec<&[u8]> = tables.iter().map(Vec::as_slice).collect();
        Self::from_tables(&refs)
    }

    /// Compiles ASL source (one `DefinitionBlock`) with `iasl` and loads the result: firmware
    /// for an emulated host written as ASL (feature `iasl`).
    #[cfg(feature = "iasl")]
    pub fn from_asl(asl: &str) -> Result<Self, FirmwareError> {
        let table = crate::iasl::compile_asl(asl)?;
        Self::from_tables(&[&table])
    }

    /// Uses an already loaded namespace. At least one host bridge must advertise the TPH
    /// query at load time (the default bridge of [`SteeringTagSource::st_info`]).
    pub fn from_aml(mut aml: Aml) -> Result<Self, FirmwareError> {
        let p = probe(&mut aml);
        let names = p.bridges.iter().map(|b| b.path.clone()).collect();
        let bridge = p
            .tph_bridge
            .ok_or(FirmwareError::NoTphDsm { bridges: names })?;
        Ok(Self {
            aml: Mutex::new(aml),
            bridge,
            bridges: p.bridges,
        })
    }

    /// The default host bridge (the first that advertised the TPH query at load).
    pub fn bridge(&self) -> &HostBridge {
        &self.bridge
    }

    /// Every host bridge of the namespace.
    pub fn bridges(&self) -> &[HostBridge] {
        &self.bridges
    }

    fn aml(&self) -> std::sync::MutexGuard<'_, Aml> {
        self.aml
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SteeringTagSource for AmlSource {
    fn st_info(&self, uid: u32) -> Result<StInfo, FirmwareError> {
        checked_query(&mut self.aml(), &self.bridge, uid)
    }

    /// The bridge whose segment (`_SEG`) and root bus (`_CRS` bus range start, else `_BBN`)
    /// match (`ACPI_HANDLE(rp->bus->bridge)`), not the first that has a method.
    fn st_info_at(&self, id: HostBridgeId, uid: u32) -> Result<StInfo, FirmwareError> {
        let bridge = self
            .bridges
            .iter()
            .find(|b| b.id == id)
            .ok_or(FirmwareError::NoBridge {
                segment: id.segment,
                bus: id.bus,
            })?;
        checked_query(&mut self.aml(), bridge, uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_mixed_endian_matches_touuid_layout() {
        let b = uuid_bytes(PCI_DSM_UUID).unwrap();
        // ToUUID("E5C937D0-3553-4D7A-9117-EA4D19C3434D") compiles to these bytes.
        let want = [
            0xd0, 0x37, 0xc9, 0xe5, 0x53, 0x35, 0x7a, 0x4d, 0x91, 0x17, 0xea, 0x4d, 0x19, 0xc3,
            0x43, 0x4d,
        ];
        assert_eq!(b, want);
        assert_eq!(uuid_bytes("E5C937D0-3553-4D7A-9117"), None);
    }

    #[test]
    fn bus_range_start_reads_word_dword_and_qword_bus_descriptors() {
        // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0x40, 0x7F, 0,
        // 0x40) as iasl compiles it, after an IO descriptor and before the end tag.
        let io = [0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08];
        let word = [
            0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x40, 0x00, 0x7f, 0x00, 0x00, 0x00,
            0x40, 0x00,
        ];
        let end = [0x79, 0x00];
        let t = [&io[..], &word, &end].concat();
        assert_eq!(bus_range_start(&t), Some(0x40));
        let mut dword = vec![0x87, 0x17, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0x80];
        dword.resize(3 + 0x17, 0);
        assert_eq!(bus_range_start(&[&dword[..], &end].concat()), Some(0x80));
        let memory_word = [&[0x88, 0x0d, 0x00, 0x00][..], &[0; 12]].concat();
        assert_eq!(bus_range_start(&[&memory_word[..], &end].concat()), None);
    }

    #[test]
    fn eisa_id_encodes_pnp0a08_as_iasl_does() {
        // iasl compiles EisaId("PNP0A08") to 0x080AD041 and EisaId("PNP0A03") to 0x030AD041.
        assert_eq!(eisa_id("PNP0A08"), Some(0x080a_d041));
        assert_eq!(eisa_id("PNP0A03"), Some(0x030a_d041));
        assert_eq!(eisa_id("pnp0a03"), None);
    }
}
