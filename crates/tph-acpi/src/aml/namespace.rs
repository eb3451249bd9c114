//! The ACPI namespace: a tree of 4-character names in an arena, with the AML path rules
//! (root `\`, parent `^`, single-segment search up the scopes).

use std::collections::BTreeMap;
use std::fmt;

use super::value::{Ref, Value};

/// A four-character name segment.
pub type Seg = [u8; 4];

/// A parsed AML NameString.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamePath {
    /// Starts at the root (`\`).
    pub root: bool,
    /// Number of `^` parent prefixes.
    pub up: u32,
    /// The segments (empty: the null name).
    pub segs: Vec<Seg>,
}

impl NamePath {
    /// Parses an ASL-style path such as `\_SB.PCI0._DSM` or `^FOO` (segments padded with `_`).
    pub fn parse_text(text: &str) -> Option<Self> {
        let mut p = Self::default();
        let mut rest = text;
        if let Some(r) = rest.strip_prefix('\\') {
            p.root = true;
            rest = r;
        }
        while let Some(r) = rest.strip_prefix('^') {
            p.up += 1;
            rest = r;
        }
        for part in rest.split('.').filter(|s| !s.is_empty()) {
            p.segs.push(seg_from_text(part)?);
        }
        Some(p)
    }
}

fn seg_from_text(part: &str) -> Option<Seg> {
    let b = part.as_bytes();
    if b.is_empty() || b.len() > 4 {
        return None;
    }
    let mut seg = *b"____";
    for (d, s) in seg.iter_mut().zip(b) {
        if !(s.is_ascii_uppercase() || s.is_ascii_digit() || *s == b'_') {
            return None;
        }
        *d = *s;
    }
    Some(seg)
}

impl fmt::Display for NamePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.root {
            f.write_str("\\")?;
        }
        for _ in 0..self.up {
            f.write_str("^")?;
        }
        let parts: Vec<String> = self.segs.iter().map(seg_text).collect();
        f.write_str(&parts.join("."))
    }
}

/// A segment as text (trailing `_` padding kept, as ACPI paths print it).
pub fn seg_text(s: &Seg) -> String {
    s.iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '?' })
        .collect()
}

/// Where a method's AML lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    /// Index of the table in the namespace's table list.
    pub table: usize,
    /// First byte of the body.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A field's place in its region (or the index/data pair of an IndexField).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// The OperationRegion node (for an IndexField: the data field node).
    pub region: usize,
    /// For an IndexField: the index field node.
    pub index: Option<usize>,
    /// Offset in bits from the start of the region.
    pub bit_off: u64,
    /// Width in bits.
    pub bit_len: u64,
    /// Access width in bytes (1, 2, 4, 8).
    pub access: u8,
    /// For a BankField: the bank-select field node and the value to write to it first.
    pub bank: Option<(usize, u64)>,
}

/// What a namespace node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// A scope with no object of its own (the root, `\_SB`, or a `Scope` target).
    Scope,
    /// Declared by `External`, not (yet) defined.
    External {
        /// Object type byte from the declaration.
        kind: u8,
        /// Argument count for a method.
        args: u8,
    },
    /// A `Name`d data object.
    Data(Value),
    /// A control method.
    Method {
        /// Its body.
        code: Code,
        /// Argument count (0..=7).
        args: u8,
        /// Declared Serialized.
        serialized: bool,
    },
    /// The built-in `\_OSI` method (operating system interface query).
    Osi,
    /// An alias of another node.
    Alias(usize),
    /// A device.
    Device,
    /// A processor (legacy `Processor` object) with its id.
    Processor(u8),
    /// A power resource.
    PowerResource,
    /// A thermal zone.
    ThermalZone,
    /// A mutex.
    Mutex,
    /// An event.
    Event,
    /// An operation region.
    Region {
        /// Address space id.
        space: u8,
        /// Base address.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
    /// A field unit.
    Field(FieldDef),
    /// A buffer field made by `CreateXxxField`.
    BufferField {
        /// The buffer it views.
        src: Ref,
        /// Offset in bits.
        bit_off: u64,
        /// Width in bits.
        bit_len: u64,
    },
}

impl Object {
    /// The ObjectType number (ACPI 6.5 table 19.x).
    pub fn type_code(&self) -> u64 {
        match self {
            Self::Scope | Self::External { .. } | Self::Alias(_) => 0,
            Self::Data(v) => v.type_code(),
            Self::Field(_) => 5,
            Self::Device => 6,
            Self::Event => 7,
            Self::Method { .. } | Self::Osi => 8,
            Self::Mutex => 9,
            Self::Region { .. } => 10,
            Self::PowerResource => 11,
            Self::Processor(_) => 12,
            Self::ThermalZone => 13,
            Self::BufferField { .. } => 14,
        }
    }
}

/// One node of the namespace tree.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its name segment.
    pub seg: Seg,
    /// Parent node (the root is its own parent).
    pub parent: usize,
    /// Children by name.
    pub children: BTreeMap<Seg, usize>,
    /// What it holds.
    pub obj: Object,
}

/// The namespace arena. Node 0 is the root.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Node>,
}

/// Why a node could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    /// A scope on the path does not exist.
    NoScope,
    /// The name is already defined.
    Exists(usize),
    /// The path is the null name.
    Empty,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// A tree with the root, the predefined scopes `\_GPE \_PR_ \_SB_ \_SI_ \_TZ_`, and
    /// `\_REV`, `\_OS_`, `\_OSI`.
    pub fn new() -> Self {
        let root = Node {
            seg: *b"\\___",
            parent: 0,
            children: BTreeMap::new(),
            obj: Object::Scope,
        };
        let mut t = Self { nodes: vec![root] };
        for s in [b"_GPE", b"_PR_", b"_SB_", b"_SI_", b"_TZ_"] {
            t.insert_child(0, *s, Object::Scope);
        }
        t.insert_child(0, *b"_REV", Object::Data(Value::Integer(2)));
        let os = Value::String(b"Microsoft Windows NT".to_vec());
        t.insert_child(0, *b"_OS_", Object::Data(os));
        t.insert_child(0, *b"_OSI", Object::Osi);
        t
    }

    /// Number of nodes (a watermark for [`Tree::truncate`]).
    pub fn watermark(&self) -> usize {
        self.nodes.len()
    }

    /// The node `id`, mutably.
    pub fn get_mut(&mut self, id: usize) -> Option<&mut Node> {
        self.nodes.get_mut(id)
    }

    /// The object of node `id`.
    pub fn obj(&self, id: usize) -> Option<&Object> {
        self.nodes.get(id).map(|n| &n.obj)
    }

    fn insert_child(&mut self, parent: usize, seg: Seg, obj: Object) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node {
            seg,
            parent,
            children: BTreeMap::new(),
            obj,
        });
        if let Some(p) = self.nodes.get_mut(parent) {
            p.children.insert(seg, id);
        }
        id
    }

    /// The child `seg` of `parent` (no upward search, aliases not followed).
    pub fn child(&self, parent: usize, seg: &Seg) -> Option<usize> {
        self.nodes.get(parent)?.children.get(seg).copied()
    }

    fn parent(&self, id: usize) -> usize {
        self.nodes.get(id).map_or(0, |n| n.parent)
    }

    /// The scope a path's segments are taken from (root or `^` prefixes applied).
    fn base(&self, scope: usize, p: &NamePath) -> usize {
        let mut at = if p.root { 0 } else { scope };
        for _ in 0..p.up {
            at = self.parent(at);
        }
        at
    }

    /// Looks `p` up from `scope`, searching upward for a single bare segment; aliases followed.
    pub fn lookup(&self, scope: usize, p: &NamePath) -> Option<usize> {
        let found = self.lookup_raw(scope, p)?;
        Some(self.follow_alias(found))
    }

    fn lookup_raw(&self, scope: usize, p: &NamePath) -> Option<usize> {
        let base = self.base(scope, p);
        if !p.root && p.up == 0 && p.segs.len() == 1 {
            return self.search_up(base, p.segs.first()?);
        }
        if p.segs.is_empty() {
            return Some(base);
        }
        p.segs.iter().try_fold(base, |at, s| self.child(at, s))
    }

    fn search_up(&self, mut at: usize, seg: &Seg) -> Option<usize> {
        loop {
            if let Some(c) = self.child(at, seg) {
                return Some(c);
            }
            if at == 0 {
                return None;
            }
            at = self.parent(at);
        }
    }

    /// Follows alias links (bounded, so an alias cycle cannot hang).
    pub fn follow_alias(&self, mut id: usize) -> usize {
        for _ in 0..64 {
            match self.obj(id) {
                Some(Object::Alias(t)) => id = *t,
                _ => break,
            }
        }
        id
    }

    /// Creates `p` under `scope` holding `obj`. An `External` placeholder is replaced.
    pub fn create(
        &mut self,
        scope: usize,
        p: &NamePath,
        obj: Object,
    ) -> Result<usize, CreateError> {
        let (last, parent) = self.parent_of(scope, p)?;
        match self.child(parent, &last) {
            Some(id) if matches!(self.obj(id), Some(Object::External { .. })) => {
                if let Some(n) = self.nodes.get_mut(id) {
                    n.obj = obj;
                }
                Ok(id)
            }
            Some(id) => Err(CreateError::Exists(id)),
            None => Ok(self.insert_child(parent, last, obj)),
        }
    }

    fn parent_of(&self, scope: usize, p: &NamePath) -> Result<(Seg, usize), CreateError> {
        let (last, init) = p.segs.split_last().ok_or(CreateError::Empty)?;
        let base = self.base(scope, p);
        let parent = init
            .iter()
            .try_fold(base, |at, s| self.child(at, s))
            .ok_or(CreateError::NoScope)?;
        Ok((*last, parent))
    }

    /// Declares an external: missing scopes on the way become placeholders too.
    pub fn declare_external(&mut self, scope: usize, p: &NamePath, kind: u8, args: u8) {
        let mut at = self.base(scope, p);
        let n = p.segs.len();
        for (i, s) in p.segs.iter().enumerate() {
            at = match self.child(at, s) {
                Some(c) => c,
                None if i + 1 == n => self.insert_child(at, *s, Object::External { kind, args }),
                None => self.insert_child(at, *s, Object::External { kind: 0, args: 0 }),
            };
        }
    }

    /// Removes every node created at or after watermark `len` (method-local objects).
    pub fn truncate(&mut self, len: usize) {
        while self.nodes.len() > len.max(1) {
            let Some(n) = self.nodes.pop() else { break };
            let id = self.nodes.len();
            if let Some(p) = self.nodes.get_mut(n.parent)
                && p.children.get(&n.seg) == Some(&id)
            {
                p.children.remove(&n.seg);
            }
        }
    }

    /// The absolute path of node `id`, e.g. `\_SB_.PCI0`.
    pub fn path(&self, id: usize) -> String {
        let mut segs = Vec::new();
        let mut at = id;
        for _ in 0..256 {
            if at == 0 {
                break;
            }
            let Some(n) = self.nodes.get(at) else { break };
            segs.push(seg_text(&n.seg));
            at = n.parent;
        }
        segs.reverse();
        format!("\\{}", segs.join("."))
    }

    /// The children of `id` in creation order.
    pub fn children(&self, id: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .nodes
            .get(id)
            .map(|n| n.children.values().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Every node id in creation order (root first).
    pub fn ids(&self) -> std::ops::Range<usize> {
        0..self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(t: &str) -> NamePath {
        NamePath::parse_text(t).unwrap()
    }

    #[test]
    fn namespace_single_segment_searches_up_scopes() {
        let mut t = Tree::new();
        let pci = t.create(0, &path("\\_SB.PCI0"), Object::Device).unwrap();
        let dev = t.create(pci, &path("DEV0"), Object::Device).unwrap();
        assert_eq!(t.lookup(dev, &path("PCI0")), Some(pci));
        assert_eq!(
            t.lookup(dev, &path("_SB.PCI0")),
            None,
            "multi-segment names do not search"
        );
        assert_eq!(t.lookup(dev, &path("^^PCI0")), Some(pci));
        assert_eq!(t.path(dev), "\\_SB_.PCI0.DEV0");
    }

    #[test]
    fn namespace_duplicate_name_is_refused_but_external_is_replaced() {
        let mut t = Tree::new();
        t.declare_external(0, &path("\\_SB.EXT0.MTH0"), 8, 2);
        let ext = t.lookup(0, &path("\\_SB.EXT0")).unwrap();
        assert_eq!(t.create(0, &path("\\_SB.EXT0"), Object::Device), Ok(ext));
        assert_eq!(
            t.create(0, &path("\\_SB.EXT0"), Object::Device),
            Err(CreateError::Exists(ext))
        );
        assert!(
            t.lookup(0, &path("\\_SB.EXT0.MTH0")).is_some(),
            "children survive"
        );
    }

    #[test]
    fn namespace_truncate_forgets_method_locals() {
        let mut t = Tree::new();
        let mark = t.watermark();
        t.create(0, &path("TMP0"), Object::Data(Value::Integer(1)))
            .unwrap();
        t.truncate(mark);
        assert_eq!(t.lookup(0, &path("TMP0")), None);
    }

    #[test]
    fn namespace_alias_cycle_does_not_hang() {
        let mut t = Tree::new();
        let a = t.create(0, &path("AAAA"), Object::Scope).unwrap();
        let b = t.create(0, &path("BBBB"), Object::Alias(a)).unwrap();
        t.get_mut(a).unwrap().obj = Object::Alias(b);
        let _ = t.lookup(0, &path("AAAA"));
    }
}
