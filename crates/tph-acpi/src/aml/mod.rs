//! An AML interpreter for the methods firmware uses to answer `_DSM` queries.
//!
//! [`Aml::load`] checks each table's header and checksum and loads the DSDT and SSDTs into one
//! namespace, running their definitions; a construct it cannot run is skipped and reported in
//! [`LoadReport`] while the rest of the table loads. [`Aml::evaluate`] runs a method or reads a
//! named object. Every step is bounded by [`Limits`], so hostile AML yields an error, never a
//! hang or a panic. Operation-region accesses go to a host [`RegionHandler`]; with none, access
//! fails with an error naming the region.

mod cursor;
mod exec;
mod expr;
mod namespace;
mod objects;
pub mod table;
mod value;

use std::sync::Arc;

use crate::FirmwareError;
use cursor::Cursor;
use exec::Machine;
pub use namespace::NamePath;
use namespace::{Object, Tree};
use value::Width;
pub use value::{Ref, Value};

/// Bounds on one evaluation (and on each table's load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Terms executed in total.
    pub max_steps: u64,
    /// Nested method calls.
    pub max_depth: usize,
    /// Iterations of one `While`.
    pub max_loop_iterations: u64,
    /// Bytes (or package elements) in one buffer, string or package.
    pub max_alloc: usize,
    /// Nesting of terms within terms (including method calls), bounding native stack use.
    pub max_nesting: usize,
    /// Bytes created or copied in one evaluation (buffers, strings, packages).
    pub max_total_alloc: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 2_000_000,
            max_depth: 64,
            max_loop_iterations: 100_000,
            max_alloc: 1 << 20,
            max_nesting: 256,
            max_total_alloc: 64 << 20,
        }
    }
}

impl Limits {
    /// The default bounds (2,000,000 terms, 64 nested calls, 100,000 iterations of one
    /// `While`, 1 MiB per object, nesting 256, 64 MiB per evaluation).
    ///
    /// ```
    /// use tph_acpi::aml::Limits;
    /// let l = Limits::new().with_max_steps(50_000).with_max_loop_iterations(1_000);
    /// assert_eq!((l.max_steps, l.max_loop_iterations), (50_000, 1_000));
    /// assert_eq!(l.max_depth, Limits::default().max_depth);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The same with at most `steps` terms executed in total.
    #[must_use]
    pub fn with_max_steps(mut self, steps: u64) -> Self {
        self.max_steps = steps;
        self
    }

    /// The same with at most `depth` nested method calls.
    #[must_use]
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// The same with at most `iterations` of one `While`.
    #[must_use]
    pub fn with_max_loop_iterations(mut self, iterations: u64) -> Self {
        self.max_loop_iterations = iterations;
        self
    }

    /// The same with at most `bytes` bytes (or package elements) in one object.
    #[must_use]
    pub fn with_max_alloc(mut self, bytes: usize) -> Self {
        self.max_alloc = bytes;
        self
    }

    /// The same with terms nested at most `nesting` deep.
    #[must_use]
    pub fn with_max_nesting(mut self, nesting: usize) -> Self {
        self.max_nesting = nesting;
        self
    }

    /// The same with at most `bytes` bytes created or copied in one evaluation.
    #[must_use]
    pub fn with_max_total_alloc(mut self, bytes: usize) -> Self {
        self.max_total_alloc = bytes;
        self
    }
}

/// The host side of operation regions (system memory, I/O ports, PCI config, ...).
pub trait RegionHandler {
    /// Reads `width` bytes (1, 2, 4 or 8) at `addr` in address space `space`.
    fn read(&mut self, space: u8, addr: u64, width: u8) -> Result<u64, String>;
    /// Writes `width` bytes at `addr` in address space `space`.
    fn write(&mut self, space: u8, addr: u64, width: u8, value: u64) -> Result<(), String>;
}

/// A term the loader could not run and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// Index of the table in load order.
    pub table: usize,
    /// Offset of the term in the table body.
    pub offset: usize,
    /// Its first opcode byte.
    pub opcode: u8,
    /// The scope it was in.
    pub scope: String,
    /// Why it failed.
    pub why: String,
}

impl std::fmt::Display for Skipped {
    /// `table 0 offset 0x1a in \_SB_: skipped: why`, as tools warn about it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "table {} offset {:#x} in {}: skipped: {}",
            self.table, self.offset, self.scope, self.why
        )
    }
}

/// What loading did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Signatures of the tables loaded, in order.
    pub tables: Vec<String>,
    /// Terms skipped.
    pub skipped: Vec<Skipped>,
    /// `_STA`/`_INI` evaluations that failed during initialization (path and why).
    pub init_failures: Vec<String>,
}

/// A loaded namespace ready for evaluation.
#[derive(Clone, Debug)]
pub struct Aml {
    tree: Tree,
    tables: Vec<Arc<[u8]>>,
    width: Width,
    limits: Limits,
    report: LoadReport,
}

impl Aml {
    /// Loads DSDT and SSDT tables (the DSDT, when present, first) with default limits.
    pub fn load(tables: &[&[u8]]) -> Result<Self, FirmwareError> {
        Self::load_with(tables, Limits::default())
    }

    /// Loads tables with the given limits. Tables other than DSDT/SSDT are an error.
    pub fn load_with(tables: &[&[u8]], limits: Limits) -> Result<Self, FirmwareError> {
        let mut sdts = tables
            .iter()
            .map(|t| table::Sdt::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = sdts
            .iter()
            .find(|s| !matches!(&s.signature, b"DSDT" | b"SSDT"))
        {
            let why = "not a DSDT or SSDT".to_string();
            return Err(FirmwareError::Table {
                table: bad.name(),
                why,
            });
        }
        sdts.sort_by_key(|s| s.signature != *b"DSDT");
        let narrow = sdts
            .first()
            .is_some_and(|s| s.signature == *b"DSDT" && s.revision < 2);
        let width = Width {
            bytes: if narrow { 4 } else { 8 },
        };
        let mut aml = Self {
            tree: Tree::new(),
            tables: Vec::new(),
            width,
            limits,
            report: LoadReport::default(),
        };
        for sdt in sdts {
            aml.load_one(sdt);
        }
        aml.initialize();
        Ok(aml)
    }

    /// Runs `\_SB._INI`, then each present device's `_INI`, parents first, as the OS does after
    /// loading. Children are visited when `_STA` (default 0xF) says present or functioning.
    fn initialize(&mut self) {
        if let Some(ini) = self.find("\\_SB._INI") {
            self.init_call(ini);
        }
        let mut stack = vec![0usize];
        while let Some(node) = stack.pop() {
            let mut kids = self.tree.children(node);
            kids.reverse();
            for k in kids {
                if self.init_visit(k) {
                    stack.push(k);
                }
            }
        }
    }

    /// Initializes one node; returns whether to visit its children.
    fn init_visit(&mut self, node: usize) -> bool {
        let is_device = matches!(
            self.tree.obj(node),
            Some(Object::Device | Object::Processor(_) | Object::ThermalZone)
        );
        if !is_device {
            return true;
        }
        let sta = match self.child(node, "_STA") {
            Some(s) => self.init_call(s).map_or(0, |v| match v {
                Value::Integer(i) => i,
                _ => 0,
            }),
            None => 0x0f,
        };
        if sta & 1 != 0
            && let Some(ini) = self
                .child(node, "_INI")
                .filter(|i| self.tree.path(*i) != "\\_SB_._INI")
        {
            self.init_call(ini);
        }
        sta & 0x9 != 0
    }

    fn init_call(&mut self, node: usize) -> Option<Value> {
        match self.evaluate_node(node, &[], None) {
            Ok(v) => Some(v),
            Err(e) => {
                let path = self.tree.path(node);
                self.report.init_failures.push(format!("{path}: {e}"));
                None
            }
        }
    }

    fn load_one(&mut self, sdt: table::Sdt) {
        let idx = self.tables.len();
        self.report.tables.push(sdt.name());
        let body: Arc<[u8]> = Arc::from(sdt.body);
        self.tables.push(body.clone());
        let end = body.len();
        let mut m = Machine::new(&mut self.tree, &self.tables, self.width, self.limits);
        m.load = Some(Vec::new());
        let mut c = Cursor::new(body, idx, 0, end);
        // Load mode records failures instead of returning them.
        let _ = m.exec_list(&mut c, end);
        let skipped = m.load.take().unwrap_or_default();
        self.report.skipped.extend(skipped);
    }

    /// What loading skipped.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Whether integers are 32 bits wide (DSDT revision below 2).
    pub fn narrow_integers(&self) -> bool {
        self.width.bytes == 4
    }

    /// Evaluates `path` (absolute, e.g. `\_SB.PCI0._DSM`) with `args`, no region handler.
    pub fn evaluate(&mut self, path: &str, args: &[Value]) -> Result<Value, FirmwareError> {
        self.evaluate_with(path, args, None)
    }

    /// Evaluates `path` with `args`, sending region accesses to `handler`.
    pub fn evaluate_with<'a>(
        &'a mut self,
        path: &str,
        args: &[Value],
        handler: Option<&'a mut dyn RegionHandler>,
    ) -> Result<Value, FirmwareError> {
        let p =
            NamePath::parse_text(path).ok_or_else(|| FirmwareError::NotFound(path.to_string()))?;
        let node = self
            .tree
            .lookup(0, &p)
            .ok_or_else(|| FirmwareError::NotFound(path.to_string()))?;
        self.evaluate_node(node, args, handler)
    }

    /// Evaluates the object at node `node`.
    pub fn evaluate_node<'a>(
        &'a mut self,
        node: usize,
        args: &[Value],
        handler: Option<&'a mut dyn RegionHandler>,
    ) -> Result<Value, FirmwareError> {
        let mut m = Machine::new(&mut self.tree, &self.tables, self.width, self.limits);
        m.handler = handler;
        if matches!(m.tree.obj(node), Some(Object::Osi)) {
            return m.osi(args.first().unwrap_or(&Value::Uninitialized));
        }
        let is_method = matches!(m.tree.obj(node), Some(Object::Method { .. }));
        let v = if is_method {
            let mut a = args.to_vec();
            a.truncate(7);
            m.call(node, a)?
        } else {
            m.read_node(node)?
        };
        m.public(v)
    }

    /// Node id of an absolute path.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.tree.lookup(0, &NamePath::parse_text(path)?)
    }

    /// Node id of `seg` directly under `node` (no upward search), aliases followed.
    pub fn child(&self, node: usize, seg: &str) -> Option<usize> {
        let p = NamePath::parse_text(seg)?;
        let [s] = p.segs.as_slice() else { return None };
        self.tree.child(node, s).map(|c| self.tree.follow_alias(c))
    }

    /// The absolute path of `node`.
    pub fn path(&self, node: usize) -> String {
        self.tree.path(node)
    }

    /// Every Device node, in definition order.
    pub fn devices(&self) -> Vec<usize> {
        self.tree
            .ids()
            .filter(|&n| matches!(self.tree.obj(n), Some(Object::Device)))
            .collect()
    }

    /// Every control method node, in definition order.
    pub fn methods(&self) -> Vec<usize> {
        self.tree.ids().filter(|&n| self.is_method(n)).collect()
    }

    /// Whether `node` is a control method.
    pub fn is_method(&self, node: usize) -> bool {
        matches!(
            self.tree.obj(node),
            Some(Object::Method { .. } | Object::Osi)
        )
    }

    /// Number of namespace nodes.
    pub fn node_count(&self) -> usize {
        self.tree.watermark()
    }
}

impl Machine<'_> {
    /// Makes a result meaningful outside the machine: element references are read.
    fn public(&mut self, v: Value) -> Result<Value, FirmwareError> {
        match v {
            Value::Reference(Ref::Node(n)) => Ok(Value::Reference(Ref::Node(n))),
            Value::Reference(r) => self.read_ref(&r),
            v => Ok(v),
        }
    }
}
