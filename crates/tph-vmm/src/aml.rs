//! A small AML encoder (ACPI 6.5 section 20.2, "AML Grammar Definition"): exactly the terms
//! the guest's steering-tag SSDT and the merged `_DSM` need. Each function returns the encoded
//! bytes of one term, so terms nest by concatenation. Private: the crate's API is the tables
//! and fragments of `ssdt`, never this encoder.

/// `ZeroOp`.
const ZERO_OP: u8 = 0x00;
/// `OneOp`.
const ONE_OP: u8 = 0x01;
/// `NameOp`.
const NAME_OP: u8 = 0x08;
/// `BytePrefix`, `WordPrefix`, `DWordPrefix`, `QWordPrefix`.
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;
const QWORD_PREFIX: u8 = 0x0e;
/// `ScopeOp`, `BufferOp`, `PackageOp`, `VarPackageOp`, `MethodOp`, `ExternalOp`.
const SCOPE_OP: u8 = 0x10;
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
const VAR_PACKAGE_OP: u8 = 0x13;
const METHOD_OP: u8 = 0x14;
const EXTERNAL_OP: u8 = 0x15;
/// `DualNamePrefix`, `MultiNamePrefix`, `RootChar`.
const DUAL_NAME_PREFIX: u8 = 0x2e;
const MULTI_NAME_PREFIX: u8 = 0x2f;
const ROOT_CHAR: u8 = b'\\';
/// `Local0Op` and `Arg0Op`.
const LOCAL0_OP: u8 = 0x60;
const ARG0_OP: u8 = 0x68;
/// `StoreOp`, `ConcatOp`, `IncrementOp`, `OrOp`, `DerefOfOp`, `SizeOfOp`, `IndexOp`,
/// `ObjectTypeOp`.
const STORE_OP: u8 = 0x70;
const CONCAT_OP: u8 = 0x73;
const OR_OP: u8 = 0x7d;
const SIZE_OF_OP: u8 = 0x87;
const OBJECT_TYPE_OP: u8 = 0x8e;
const INCREMENT_OP: u8 = 0x75;
const DEREF_OF_OP: u8 = 0x83;
const INDEX_OP: u8 = 0x88;
/// `LAndOp`, `LEqualOp`, `LLessOp`.
const LAND_OP: u8 = 0x90;
const LEQUAL_OP: u8 = 0x93;
const LLESS_OP: u8 = 0x95;
/// `IfOp`, `WhileOp`, `ReturnOp`.
const IF_OP: u8 = 0xa0;
const WHILE_OP: u8 = 0xa2;
const RETURN_OP: u8 = 0xa4;
/// `NullName` (an empty Target).
const NULL_NAME: u8 = 0x00;

/// Object types of `External` (ACPI 6.5 table 19.28, `ObjectType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectType {
    /// 6: a Device.
    Device,
    /// 8: a Method taking this many arguments.
    Method(u8),
}

/// `PkgLength` followed by `body`: the length counts its own bytes (1 to 4 of them).
pub(crate) fn pkg(body: &[u8]) -> Vec<u8> {
    let mut out = pkg_length(body.len());
    out.extend_from_slice(body);
    out
}

fn pkg_length(body: usize) -> Vec<u8> {
    if body + 1 < 0x40 {
        return vec![(body + 1) as u8];
    }
    for extra in 1..=3usize {
        let total = body + 1 + extra;
        if total < 1 << (4 + 8 * extra) {
            let mut out = vec![(extra as u8) << 6 | (total & 0xf) as u8];
            out.extend((0..extra).map(|i| (total >> (4 + 8 * i)) as u8));
            return out;
        }
    }
    // Beyond 256 MiB: no table of ours comes near; encode the largest length.
    vec![0xff, 0xff, 0xff, 0xff]
}

/// One 4-character name segment, `_`-padded (`"PCI0"`, `"_SB"`).
fn name_seg(seg: &str) -> [u8; 4] {
    let mut out = [b'_'; 4];
    for (o, b) in out.iter_mut().zip(seg.bytes()) {
        *o = b.to_ascii_uppercase();
    }
    out
}

/// A `NameString`: `\_SB.PCI0` (absolute) or `TPHT` (relative).
pub(crate) fn name(path: &str) -> Vec<u8> {
    let (root, rest) = match path.strip_prefix('\\') {
        Some(r) => (true, r),
        None => (false, path),
    };
    let segs: Vec<[u8; 4]> = rest
        .split('.')
        .filter(|s| !s.is_empty())
        .map(name_seg)
        .collect();
    let mut out = Vec::new();
    if root {
        out.push(ROOT_CHAR);
    }
    match segs.len() {
        0 => out.push(NULL_NAME),
        1 => {}
        2 => out.push(DUAL_NAME_PREFIX),
        n => out.extend([MULTI_NAME_PREFIX, n as u8]),
    }
    out.extend(segs.iter().flatten());
    out
}

/// The shortest integer encoding of `v` (`ZeroOp`, `OneOp`, byte, word, dword, qword).
pub(crate) fn int(v: u64) -> Vec<u8> {
    match v {
        0 => vec![ZERO_OP],
        1 => vec![ONE_OP],
        v if v <= 0xff => vec![BYTE_PREFIX, v as u8],
        v if v <= 0xffff => [&[WORD_PREFIX][..], &(v as u16).to_le_bytes()].concat(),
        v if v <= 0xffff_ffff => [&[DWORD_PREFIX][..], &(v as u32).to_le_bytes()].concat(),
        v => [&[QWORD_PREFIX][..], &v.to_le_bytes()].concat(),
    }
}

/// `Buffer (len) { bytes }`.
pub(crate) fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut body = int(bytes.len() as u64);
    body.extend_from_slice(bytes);
    [vec![BUFFER_OP], pkg(&body)].concat()
}

/// `Package () { elements }` (`VarPackageOp` above 255 elements).
pub(crate) fn package(elements: &[Vec<u8>]) -> Vec<u8> {
    let (op, mut body) = match u8::try_from(elements.len()) {
        Ok(n) => (PACKAGE_OP, vec![n]),
        Err(_) => (VAR_PACKAGE_OP, int(elements.len() as u64)),
    };
    body.extend(elements.iter().flatten());
    [vec![op], pkg(&body)].concat()
}

/// `Name (name, value)`.
pub(crate) fn name_obj(n: &str, value: &[u8]) -> Vec<u8> {
    [vec![NAME_OP], name(n), value.to_vec()].concat()
}

/// `Scope (path) { terms }`.
pub(crate) fn scope(path: &str, terms: &[u8]) -> Vec<u8> {
    [vec![SCOPE_OP], pkg(&[name(path), terms.to_vec()].concat())].concat()
}

/// `External (path, type)` (with the argument count of a method), inside `If (Zero) { }`:
/// the opcode is for compilers and disassemblers, and an interpreter that met it at load time
/// (ACPICA 2020 tries to create the named object and fails with AE_ALREADY_EXISTS) must never
/// execute it. `iasl` emits the same guard.
pub(crate) fn external(path: &str, ty: ObjectType) -> Vec<u8> {
    let (ty, args) = match ty {
        ObjectType::Device => (6, 0),
        ObjectType::Method(args) => (8, args & 7),
    };
    let op = [vec![EXTERNAL_OP], name(path), vec![ty, args]].concat();
    if_(&int(0), &op)
}

/// `ExtOpPrefix` and `DeviceOp`.
const EXT_OP_PREFIX: u8 = 0x5b;
const DEVICE_OP: u8 = 0x82;

/// `Device (name) { terms }`.
pub(crate) fn device(n: &str, terms: &[u8]) -> Vec<u8> {
    let body = [name(n), terms.to_vec()].concat();
    [vec![EXT_OP_PREFIX, DEVICE_OP], pkg(&body)].concat()
}

/// `Method (name, args, Serialized or NotSerialized) { terms }` (sync level 0).
pub(crate) fn method(n: &str, args: u8, serialized: bool, terms: &[u8]) -> Vec<u8> {
    let flags = (args & 7) | u8::from(serialized) << 3;
    let body = [name(n), vec![flags], terms.to_vec()].concat();
    [vec![METHOD_OP], pkg(&body)].concat()
}

/// `If (predicate) { terms }`.
pub(crate) fn if_(predicate: &[u8], terms: &[u8]) -> Vec<u8> {
    [vec![IF_OP], pkg(&[predicate, terms].concat())].concat()
}

/// `While (predicate) { terms }`.
pub(crate) fn while_(predicate: &[u8], terms: &[u8]) -> Vec<u8> {
    [vec![WHILE_OP], pkg(&[predicate, terms].concat())].concat()
}

/// `Return (value)`.
pub(crate) fn return_(value: &[u8]) -> Vec<u8> {
    [&[RETURN_OP][..], value].concat()
}

/// `LEqual (a, b)`.
pub(crate) fn lequal(a: &[u8], b: &[u8]) -> Vec<u8> {
    [&[LEQUAL_OP][..], a, b].concat()
}

/// `LLess (a, b)`.
pub(crate) fn lless(a: &[u8], b: &[u8]) -> Vec<u8> {
    [&[LLESS_OP][..], a, b].concat()
}

/// `LAnd (a, b)`.
pub(crate) fn land(a: &[u8], b: &[u8]) -> Vec<u8> {
    [&[LAND_OP][..], a, b].concat()
}

/// `Store (value, target)`.
pub(crate) fn store(value: &[u8], target: &[u8]) -> Vec<u8> {
    [&[STORE_OP][..], value, target].concat()
}

/// `Or (a, b)` without a target.
pub(crate) fn or(a: &[u8], b: &[u8]) -> Vec<u8> {
    [&[OR_OP][..], a, b, &[NULL_NAME]].concat()
}

/// `Concatenate (a, b, target)`.
pub(crate) fn concatenate(a: &[u8], b: &[u8], target: &[u8]) -> Vec<u8> {
    [&[CONCAT_OP][..], a, b, target].concat()
}

/// `SizeOf (object)`.
pub(crate) fn size_of(object: &[u8]) -> Vec<u8> {
    [&[SIZE_OF_OP][..], object].concat()
}

/// `ObjectType (object)`.
pub(crate) fn object_type(object: &[u8]) -> Vec<u8> {
    [&[OBJECT_TYPE_OP][..], object].concat()
}

/// A method invocation: `path (args...)` (the callee's argument count must match).
pub(crate) fn call(path: &str, args: &[Vec<u8>]) -> Vec<u8> {
    [name(path), args.concat()].concat()
}

/// `Increment (target)`.
pub(crate) fn increment(target: &[u8]) -> Vec<u8> {
    [&[INCREMENT_OP][..], target].concat()
}

/// `DerefOf (reference)`.
pub(crate) fn deref_of(reference: &[u8]) -> Vec<u8> {
    [&[DEREF_OF_OP][..], reference].concat()
}

/// `Index (object, index)` without a target.
pub(crate) fn index(object: &[u8], idx: &[u8]) -> Vec<u8> {
    [&[INDEX_OP][..], object, idx, &[NULL_NAME]].concat()
}

/// `LocalN` (0..=7).
pub(crate) fn local(n: u8) -> Vec<u8> {
    vec![LOCAL0_OP + (n & 7)]
}

/// `ArgN` (0..=6).
pub(crate) fn arg(n: u8) -> Vec<u8> {
    vec![ARG0_OP + n.min(6)]
}

/// Identification fields of a definition block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableId<'a> {
    /// Signature, e.g. `SSDT`.
    pub signature: &'a [u8; 4],
    /// Compliance revision (2: 64-bit integers; this SSDT uses none wider than 32 bits).
    pub revision: u8,
    /// OEM ID.
    pub oem_id: &'a [u8; 6],
    /// OEM table ID.
    pub oem_table_id: &'a [u8; 8],
    /// OEM revision.
    pub oem_revision: u32,
}

/// Creator ID written into the header (the ASL compiler field: here, this crate).
const CREATOR_ID: &[u8; 4] = b"TPHV";
/// Creator revision.
const CREATOR_REVISION: u32 = 1;
/// Size of the ACPI table header.
pub(crate) const HEADER_LEN: usize = 36;

/// A whole definition block: the 36-byte header (length and checksum filled in) and `terms`.
pub(crate) fn table(id: &TableId<'_>, terms: &[u8]) -> Vec<u8> {
    let len = (HEADER_LEN + terms.len()) as u32;
    let mut t = Vec::with_capacity(HEADER_LEN + terms.len());
    t.extend_from_slice(id.signature);
    t.extend_from_slice(&len.to_le_bytes());
    t.push(id.revision);
    t.push(0); // checksum, below
    t.extend_from_slice(id.oem_id);
    t.extend_from_slice(id.oem_table_id);
    t.extend_from_slice(&id.oem_revision.to_le_bytes());
    t.extend_from_slice(CREATOR_ID);
    t.extend_from_slice(&CREATOR_REVISION.to_le_bytes());
    t.extend_from_slice(terms);
    let sum = t.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    if let Some(c) = t.get_mut(9) {
        *c = 0u8.wrapping_sub(sum);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_length_boundaries_follow_the_grammar() {
        // 62 bytes of body + 1 length byte = 63: still one byte.
        assert_eq!(pkg_length(62), vec![63]);
        // 63 + 2 = 65 = 0x41: two bytes, low nibble 1, then 0x04.
        assert_eq!(pkg_length(63), vec![0x41, 0x04]);
        // 4093 + 2 = 4095: the largest two-byte length.
        assert_eq!(pkg_length(4093), vec![0x4f, 0xff]);
        // 4094 + 3 = 4097 = 0x1001: three bytes.
        assert_eq!(pkg_length(4094), vec![0x81, 0x00, 0x01]);
    }

    #[test]
    fn name_multi_segment_path_uses_multi_name_prefix() {
        assert_eq!(name("\\_SB.PCI0.S00"), b"\\\x2f\x03_SB_PCI0S00_".to_vec());
        assert_eq!(name("TPHT"), b"TPHT".to_vec());
    }

    #[test]
    fn small_terms_encode_as_the_grammar_says() {
        assert_eq!(pkg(&[0xaa; 2]), vec![3, 0xaa, 0xaa]);
        assert_eq!(pkg(&[0; 100])[..2], [0x46, 0x06]); // 102 = 0x66
        assert_eq!(name("\\_SB.PCI0"), b"\\\x2e_SB_PCI0".to_vec());
        assert_eq!(int(0x0f), vec![0x0a, 0x0f]);
        assert_eq!(int(0x1234), vec![0x0b, 0x34, 0x12]);
        assert_eq!(
            or(&int(1), &local(3)),
            vec![OR_OP, ONE_OP, LOCAL0_OP + 3, 0]
        );
        assert_eq!(call("DSMO", &[arg(0)]), b"DSMO\x68".to_vec());
        let ext = external("\\_SB.PC00.DSMO", ObjectType::Method(4));
        assert_eq!(ext[ext.len() - 2..], [8, 4]);
    }

    #[test]
    fn table_header_has_length_and_checksum() {
        let id = TableId {
            signature: b"SSDT",
            revision: 2,
            oem_id: b"TPHVMM",
            oem_table_id: b"TPHVTAGS",
            oem_revision: 1,
        };
        let t = table(&id, &[]);
        assert_eq!(t.len(), 36);
        assert_eq!(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    }

    #[test]
    fn package_of_256_elements_uses_var_package() {
        let p = package(&vec![int(0); 256]);
        assert_eq!(p[0], VAR_PACKAGE_OP);
        assert_eq!(package(&[int(1)]), vec![PACKAGE_OP, 3, 1, ONE_OP]);
    }
}
