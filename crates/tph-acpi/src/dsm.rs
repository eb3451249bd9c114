//! The TPH steering-tag query (`docs/spec/firmware-dsm.md`): find the host bridges, check
//! function 0's bitmap for revision 7 bit 15, evaluate function 0xF per processor UID, decode.

use std::path::Path;
use std::sync::Mutex;

use crate::aml::{Aml, Value};
use crate::{FirmwareError, StInfo, SteeringTagSource};

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
pub struct HostBridge {
    /// Namespace path, e.g. `\_SB_.PCI0`.
    pub path: String,
    /// Node id in the namespace.
    pub node: usize,
    /// Whether it has a `_DSM` method.
    pub has_dsm: bool,
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
            out.push(HostBridge {
                path: aml.path(dev),
                node: dev,
                has_dsm,
            });
        }
    }
    out
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

/// Whether `bridge`'s `_DSM` function 0 (revision 7) sets bit 15 of its bitmap.
pub fn supports_tph(aml: &mut Aml, bridge: &HostBridge) -> Result<bool, FirmwareError> {
    let v = eval_dsm(aml, bridge, 0, Vec::new())?;
    let bitmap = match v {
        Value::Buffer(b) => b,
        other => return Err(FirmwareError::BadResult(other.type_name().into())),
    };
    let bit = TPH_DSM_FUNCTION as usize;
    Ok(bitmap.get(bit / 8).is_some_and(|b| b >> (bit % 8) & 1 != 0))
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
    p.is_file() && (name.starts_with("DSDT") || name.starts_with("SSDT"))
}

/// Firmware for the emulated host backed by real AML: answers [`SteeringTagSource`] queries
/// by running the host bridge `_DSM`.
#[derive(Debug)]
pub struct AmlSource {
    aml: Mutex<Aml>,
    bridge: HostBridge,
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

    /// Uses an already loaded namespace.
    pub fn from_aml(mut aml: Aml) -> Result<Self, FirmwareError> {
        let p = probe(&mut aml);
        let bridges = p.bridges.iter().map(|b| b.path.clone()).collect();
        let bridge = p.tph_bridge.ok_or(FirmwareError::NoTphDsm { bridges })?;
        Ok(Self {
            aml: Mutex::new(aml),
            bridge,
        })
    }

    /// The host bridge whose `_DSM` answers.
    pub fn bridge(&self) -> &HostBridge {
        &self.bridge
    }
}

impl SteeringTagSource for AmlSource {
    fn st_info(&self, uid: u32) -> Result<StInfo, FirmwareError> {
        let mut aml = self
            .aml
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        query(&mut aml, &self.bridge, uid)
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
    fn eisa_id_encodes_pnp0a08_as_iasl_does() {
        // iasl compiles EisaId("PNP0A08") to 0x080AD041 and EisaId("PNP0A03") to 0x030AD041.
        assert_eq!(eisa_id("PNP0A08"), Some(0x080a_d041));
        assert_eq!(eisa_id("PNP0A03"), Some(0x030a_d041));
        assert_eq!(eisa_id("pnp0a03"), None);
    }
}
