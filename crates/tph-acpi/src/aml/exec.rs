//! The executing machine: call frames, statements, control flow, method calls, references and
//! stores. Operators live in `expr.rs`, named-object definitions and fields in `objects.rs`.

use std::sync::Arc;

use super::cursor::{is_name_start, Cursor};
use super::namespace::{NamePath, Object, Tree};
use super::value::{Ref, Value, Width};
use super::{Limits, RegionHandler, Skipped};
use crate::FirmwareError;

/// One activation of a method (frame 0 is the table-load context).
#[derive(Debug, Default)]
pub struct Frame {
    /// `Local0`..`Local7`.
    pub locals: [Value; 8],
    /// `Arg0`..`Arg6` as passed.
    pub args: Vec<Value>,
    /// Args that alias the caller's buffer or package (ACPICA passes those by reference, so a
    /// callee writing an element or a buffer field changes the caller's object).
    pub aliases: [Option<Ref>; 7],
    /// Scope for name lookup and creation.
    pub scope: usize,
}

/// How a statement list ended.
#[derive(Debug)]
pub enum Flow {
    /// Fell off the end.
    Next,
    /// `Break`.
    Break,
    /// `Continue`.
    Continue,
    /// `Return` with its value.
    Return(Value),
}

/// Where a store goes.
#[derive(Debug)]
pub enum Target {
    /// The null target or the Debug object: the value is dropped.
    Discard,
    /// A place.
    Place(Ref),
}

/// The interpreter state for one evaluation (or one table load).
pub struct Machine<'a> {
    /// The namespace.
    pub tree: &'a mut Tree,
    /// Every loaded table's bytes.
    pub tables: &'a [Arc<[u8]>],
    /// Integer width.
    pub w: Width,
    /// Execution bounds.
    pub limits: Limits,
    /// Call stack.
    pub frames: Vec<Frame>,
    /// Steps taken so far.
    pub steps: u64,
    /// Operation-region handler supplied by the host.
    pub handler: Option<&'a mut dyn RegionHandler>,
    /// `Some` while loading a table: what was skipped.
    pub load: Option<Vec<Skipped>>,
    /// Nesting of field accesses (an IndexField whose index is a field, ...).
    pub field_depth: u32,
    /// Bytes created or copied so far (see [`Limits::max_total_alloc`]).
    pub copied: usize,
    /// Current nesting of terms (expressions within expressions, blocks within blocks, calls).
    pub nesting: usize,
}

fn aml_err(why: impl Into<String>) -> FirmwareError {
    FirmwareError::Aml(why.into())
}

impl<'a> Machine<'a> {
    /// A machine with one base frame whose scope is the root.
    pub fn new(tree: &'a mut Tree, tables: &'a [Arc<[u8]>], w: Width, limits: Limits) -> Self {
        Self {
            tree,
            tables,
            w,
            limits,
            frames: vec![Frame::default()],
            steps: 0,
            handler: None,
            load: None,
            field_depth: 0,
            nesting: 0,
            copied: 0,
        }
    }

    /// Counts a step; fails once the step budget is spent.
    pub fn tick(&mut self) -> Result<(), FirmwareError> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(FirmwareError::Limit(format!(
                "more than {} steps",
                self.limits.max_steps
            )));
        }
        Ok(())
    }

    /// Index of the running frame.
    pub fn fi(&self) -> usize {
        self.frames.len().saturating_sub(1)
    }

    /// The current scope node.
    pub fn scope(&self) -> usize {
        self.frames.last().map_or(0, |f| f.scope)
    }

    /// Sets the current scope, returning the old one.
    pub fn set_scope(&mut self, s: usize) -> usize {
        match self.frames.last_mut() {
            Some(f) => std::mem::replace(&mut f.scope, s),
            None => 0,
        }
    }

    /// Runs a statement list up to `end`.
    pub fn exec_list(&mut self, c: &mut Cursor, end: usize) -> Result<Flow, FirmwareError> {
        let saved = c.end;
        c.end = end.min(saved);
        let r = self.exec_list_inner(c);
        c.end = saved;
        r
    }

    fn exec_list_inner(&mut self, c: &mut Cursor) -> Result<Flow, FirmwareError> {
        if self.load.is_some() {
            self.load_list(c);
            return Ok(Flow::Next);
        }
        while c.more() {
            match self.statement(c)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    /// Runs the body of an If/Else/While: even while loading, a failure inside ends the whole
    /// statement (the loader skips it), so a loop cannot swallow its own errors and spin.
    fn block(&mut self, c: &mut Cursor, end: usize) -> Result<Flow, FirmwareError> {
        let loading = self.load.take();
        let r = self.exec_list(c, end);
        self.load = loading;
        r
    }

    /// Load mode: runs every term, recording and skipping the ones that fail. The step budget
    /// is per table: once spent, the remaining terms are skipped.
    fn load_list(&mut self, c: &mut Cursor) {
        while c.more() {
            let start = c.pos;
            let extent = term_extent(c);
            if let Err(e) = self.statement(c) {
                self.record_skip(c, start, e);
                c.pos = extent.unwrap_or(c.end).max(start + 1);
            }
        }
    }

    fn record_skip(&mut self, c: &Cursor, offset: usize, e: FirmwareError) {
        let scope = self.tree.path(self.scope());
        let op = c.code.get(offset).copied().unwrap_or(0);
        if let Some(list) = self.load.as_mut() {
            list.push(Skipped {
                table: c.table,
                offset,
                opcode: op,
                scope,
                why: e.to_string(),
            });
        }
    }

    /// Enters one more level of term nesting; fails past the bound so deeply nested AML
    /// cannot exhaust the native stack.
    pub fn enter(&mut self) -> Result<(), FirmwareError> {
        if self.nesting >= self.limits.max_nesting {
            let n = self.limits.max_nesting;
            return Err(FirmwareError::Limit(format!(
                "terms nested more than {n} deep"
            )));
        }
        self.nesting += 1;
        Ok(())
    }

    /// One statement: control flow here, everything else is an expression or definition.
    pub fn statement(&mut self, c: &mut Cursor) -> Result<Flow, FirmwareError> {
        self.tick()?;
        self.enter()?;
        let r = self.statement_inner(c);
        self.nesting -= 1;
        r
    }

    fn statement_inner(&mut self, c: &mut Cursor) -> Result<Flow, FirmwareError> {
        match c.peek() {
            Some(0xa0) => self.if_else(c),
            Some(0xa2) => self.while_loop(c),
            Some(0xa5) => skip1(c, Flow::Break),
            Some(0x9f) => skip1(c, Flow::Continue),
            Some(0xa3) | Some(0xcc) => skip1(c, Flow::Next),
            Some(0xa4) => {
                c.pos += 1;
                let v = self.eval(c)?;
                Ok(Flow::Return(v))
            }
            Some(0xa1) => {
                c.pos += 1;
                c.pos = c.pkg_end()?;
                Ok(Flow::Next)
            }
            _ => self.eval(c).map(|_| Flow::Next),
        }
    }

    fn if_else(&mut self, c: &mut Cursor) -> Result<Flow, FirmwareError> {
        c.pos += 1;
        let end = c.pkg_end()?;
        let taken = self.predicate(c, end)? != 0;
        let flow = if taken {
            self.exec_list(c, end)?
        } else {
            Flow::Next
        };
        c.pos = end;
        if c.peek() != Some(0xa1) {
            return Ok(flow);
        }
        c.pos += 1;
        let else_end = c.pkg_end()?;
        let flow = if taken {
            flow
        } else {
            self.exec_list(c, else_end)?
        };
        c.pos = else_end;
        Ok(flow)
    }

    fn predicate(&mut self, c: &mut Cursor, end: usize) -> Result<u64, FirmwareError> {
        let saved = c.end;
        c.end = end.min(saved);
        let pred = self.int_arg(c);
        c.end = saved;
        pred
    }

    fn while_loop(&mut self, c: &mut Cursor) -> Result<Flow, FirmwareError> {
        c.pos += 1;
        let end = c.pkg_end()?;
        let pred_at = c.pos;
        let mut rounds = 0u64;
        loop {
            c.pos = pred_at;
            if self.predicate(c, end)? == 0 {
                break;
            }
            rounds += 1;
            if rounds > self.limits.max_loop_iterations {
                let n = self.limits.max_loop_iterations;
                return Err(FirmwareError::Limit(format!(
                    "While ran more than {n} times"
                )));
            }
            match self.block(c, end)? {
                Flow::Break => break,
                Flow::Return(v) => {
                    c.pos = end;
                    return Ok(Flow::Return(v));
                }
                Flow::Next | Flow::Continue => {}
            }
        }
        c.pos = end;
        Ok(Flow::Next)
    }

    /// Evaluates a TermArg and converts it to an integer.
    pub fn int_arg(&mut self, c: &mut Cursor) -> Result<u64, FirmwareError> {
        let v = self.eval(c)?;
        self.w.to_int(&v)
    }

    /// Calls method `node` with `args`.
    pub fn call(&mut self, node: usize, args: Vec<Value>) -> Result<Value, FirmwareError> {
        self.call_with(node, args, Default::default())
    }

    /// Calls method `node`; `aliases[i]` makes `ArgI` stand for the caller's object there.
    pub fn call_with(
        &mut self,
        node: usize,
        args: Vec<Value>,
        aliases: [Option<Ref>; 7],
    ) -> Result<Value, FirmwareError> {
        let Some(Object::Method { code, .. }) = self.tree.obj(node).cloned() else {
            return Err(aml_err(format!("{} is not a method", self.tree.path(node))));
        };
        if self.frames.len() > self.limits.max_depth {
            return Err(FirmwareError::Limit(format!(
                "call depth above {}",
                self.limits.max_depth
            )));
        }
        let bytes = self
            .tables
            .get(code.table)
            .cloned()
            .ok_or_else(|| aml_err("method in unknown table"))?;
        let mark = self.tree.watermark();
        let loading = self.load.take();
        self.frames.push(Frame {
            args,
            aliases,
            scope: node,
            ..Frame::default()
        });
        let mut c = Cursor::new(bytes, code.table, code.start, code.end);
        let end = c.end;
        let r = self.exec_list(&mut c, end);
        let out = match r {
            Ok(Flow::Return(v)) => self.detach(v, mark),
            Ok(_) => Ok(Value::Uninitialized),
            Err(e) => Err(e),
        };
        self.frames.pop();
        self.tree.truncate(mark);
        self.load = loading;
        out
    }

    /// Makes a returned value independent of the frame and method-local names about to vanish.
    fn detach(&mut self, v: Value, mark: usize) -> Result<Value, FirmwareError> {
        let fi = self.fi();
        match &v {
            Value::Reference(r) if ref_is_local(r, fi, mark) => self.read_ref(r),
            _ => Ok(v),
        }
    }

    /// Reads a local or argument of the running frame.
    pub fn frame_value(&mut self, op: u8) -> Result<Value, FirmwareError> {
        if let Some(r) = op.checked_sub(0x68).and_then(|i| self.alias(self.fi(), i)) {
            return self.read_ref(&r);
        }
        let f = self.frames.last().ok_or_else(|| aml_err("no frame"))?;
        let v = if op < 0x68 {
            f.locals.get(usize::from(op - 0x60)).cloned()
        } else {
            f.args.get(usize::from(op - 0x68)).cloned()
        };
        match v {
            Some(Value::Uninitialized) | None if op < 0x68 => {
                Err(aml_err(format!("Local{} is uninitialized", op - 0x60)))
            }
            Some(Value::Uninitialized) | None => {
                Err(aml_err(format!("Arg{} is uninitialized", op - 0x68)))
            }
            Some(v) => Ok(v),
        }
    }

    /// The caller's place `ArgI` of frame `f` aliases, if any.
    pub fn alias(&self, f: usize, i: u8) -> Option<Ref> {
        self.frames.get(f)?.aliases.get(usize::from(i))?.clone()
    }

    /// Parses a SuperName / Target operand.
    pub fn target(&mut self, c: &mut Cursor) -> Result<Target, FirmwareError> {
        let fi = self.fi();
        match c.peek() {
            Some(0x00) => skip1(c, Target::Discard),
            Some(op @ 0x60..=0x67) => skip1(c, Target::Place(Ref::Local(fi, op - 0x60))),
            Some(op @ 0x68..=0x6e) => skip1(c, Target::Place(Ref::Arg(fi, op - 0x68))),
            Some(0x5b) if c.peek_at(1) == Some(0x31) => {
                c.pos += 2;
                Ok(Target::Discard)
            }
            Some(b) if is_name_start(b) => {
                let p = c.name()?;
                Ok(Target::Place(Ref::Node(self.resolve(&p)?)))
            }
            _ => match self.eval(c)? {
                Value::Reference(r) => Ok(Target::Place(r)),
                other => Err(aml_err(format!(
                    "target is {}, not a reference",
                    other.type_name()
                ))),
            },
        }
    }

    /// Looks a name up from the current scope.
    pub fn resolve(&self, p: &NamePath) -> Result<usize, FirmwareError> {
        self.tree
            .lookup(self.scope(), p)
            .ok_or_else(|| FirmwareError::NotFound(p.to_string()))
    }

    /// A place for Index/CreateField sources: locals, args and names stay places; other
    /// expressions become temporaries.
    pub fn place(&mut self, c: &mut Cursor) -> Result<Ref, FirmwareError> {
        let fi = self.fi();
        match c.peek() {
            Some(op @ 0x60..=0x67) => skip1(c, Ref::Local(fi, op - 0x60)),
            Some(op @ 0x68..=0x6e) => skip1(c, Ref::Arg(fi, op - 0x68)),
            Some(b) if is_name_start(b) => {
                let save = c.pos;
                let p = c.name()?;
                let node = self.resolve(&p)?;
                if matches!(self.tree.obj(node), Some(Object::Data(_))) {
                    return Ok(Ref::Node(node));
                }
                c.pos = save;
                Ok(Ref::Temp(Box::new(self.eval(c)?)))
            }
            _ => match self.eval(c)? {
                Value::Reference(r) => Ok(r),
                v => Ok(Ref::Temp(Box::new(v))),
            },
        }
    }

    /// Reads what a reference points at (bounded: references may form cycles).
    pub fn read_ref(&mut self, r: &Ref) -> Result<Value, FirmwareError> {
        self.enter()?;
        let v = self.read_ref_inner(r);
        self.nesting -= 1;
        v
    }

    fn read_ref_inner(&mut self, r: &Ref) -> Result<Value, FirmwareError> {
        match r {
            Ref::Node(n) => self.read_node(*n),
            Ref::Local(f, i) => self.frame_slot(*f, *i, false).cloned(),
            Ref::Arg(f, i) => match self.alias(*f, *i) {
                Some(a) => self.read_ref(&a),
                None => self.frame_slot(*f, *i, true).cloned(),
            },
            Ref::Temp(v) => Ok((**v).clone()),
            Ref::Elem(inner, i) => {
                if let Some(cont) = self
                    .borrow(inner)
                    .filter(|v| !matches!(v, Value::Reference(_)))
                {
                    return element(cont, *i);
                }
                let mut cont = self.read_ref(inner)?;
                if let Value::Reference(r2) = cont {
                    cont = self.read_ref(&r2)?;
                }
                element(&cont, *i)
            }
        }
    }

    /// The value at a place without copying it, when it is a plain value (not a field).
    pub fn borrow<'r>(&'r self, r: &'r Ref) -> Option<&'r Value> {
        match r {
            Ref::Node(n) => match self.tree.obj(*n) {
                Some(Object::Data(v)) => Some(v),
                _ => None,
            },
            Ref::Local(f, i) => self.frames.get(*f)?.locals.get(usize::from(*i)),
            Ref::Arg(f, i) => {
                let fr = self.frames.get(*f)?;
                match fr.aliases.get(usize::from(*i))? {
                    Some(a) => self.borrow(a),
                    None => fr.args.get(usize::from(*i)),
                }
            }
            Ref::Temp(v) => Some(v),
            Ref::Elem(..) => None,
        }
    }

    fn frame_slot(&self, f: usize, i: u8, arg: bool) -> Result<&Value, FirmwareError> {
        let fr = self
            .frames
            .get(f)
            .ok_or_else(|| aml_err("reference to a finished method"))?;
        let v = if arg {
            fr.args.get(usize::from(i))
        } else {
            fr.locals.get(usize::from(i))
        };
        v.ok_or_else(|| aml_err("no such argument"))
    }

    /// The value of a named object.
    pub fn read_node(&mut self, n: usize) -> Result<Value, FirmwareError> {
        match self.tree.obj(n).cloned() {
            Some(Object::Data(v)) => {
                self.charge(super::expr::weight(&v))?;
                Ok(v)
            }
            Some(Object::Field(def)) => self.field_read(n, &def),
            Some(Object::BufferField {
                src,
                bit_off,
                bit_len,
            }) => self.buffer_field_read(&src, bit_off, bit_len),
            Some(Object::External { .. }) | None => Err(FirmwareError::NotFound(self.tree.path(n))),
            Some(_) => Ok(Value::Reference(Ref::Node(n))),
        }
    }

    /// A mutable slot for a place holding a plain value.
    pub fn slot(&mut self, r: &Ref) -> Result<&mut Value, FirmwareError> {
        match r {
            Ref::Local(f, i) => self
                .frames
                .get_mut(*f)
                .and_then(|fr| fr.locals.get_mut(usize::from(*i)))
                .ok_or_else(|| aml_err("reference to a finished method")),
            Ref::Arg(f, i) => match self.alias(*f, *i) {
                Some(a) => self.slot(&a),
                None => self
                    .frames
                    .get_mut(*f)
                    .and_then(|fr| fr.args.get_mut(usize::from(*i)))
                    .ok_or_else(|| aml_err("no such argument")),
            },
            Ref::Node(n) => match self.tree.get_mut(*n).map(|x| &mut x.obj) {
                Some(Object::Data(v)) => Ok(v),
                _ => Err(aml_err("target is not a data object")),
            },
            Ref::Elem(inner, i) => match self.slot(inner)? {
                Value::Package(p) => p
                    .get_mut(*i)
                    .ok_or_else(|| aml_err("package index out of range")),
                _ => Err(aml_err("element store into a non-package")),
            },
            Ref::Temp(_) => Err(aml_err("store into a temporary")),
        }
    }

    /// `Store` semantics: converts to the type of a named integer/string/buffer target.
    pub fn store(&mut self, v: Value, t: &Target) -> Result<(), FirmwareError> {
        self.enter()?;
        let r = self.store_inner(v, t);
        self.nesting -= 1;
        r
    }

    fn store_inner(&mut self, v: Value, t: &Target) -> Result<(), FirmwareError> {
        let Target::Place(r) = t else { return Ok(()) };
        match r {
            Ref::Node(n) => self.store_node(*n, v, true),
            Ref::Arg(f, i) => match self.read_ref(r)? {
                Value::Reference(inner) => self.store(v, &Target::Place(inner)),
                _ => {
                    // A whole-arg store replaces the arg; the caller's object is untouched.
                    if let Some(a) = self
                        .frames
                        .get_mut(*f)
                        .and_then(|fr| fr.aliases.get_mut(usize::from(*i)))
                    {
                        *a = None;
                    }
                    self.put(r, v)
                }
            },
            Ref::Elem(inner, i) => self.store_elem(inner, *i, v),
            Ref::Temp(_) => Ok(()),
            Ref::Local(..) => self.put(r, v),
        }
    }

    /// `CopyObject` semantics: replaces without conversion.
    pub fn copy_object(&mut self, v: Value, t: &Target) -> Result<(), FirmwareError> {
        match t {
            Target::Place(Ref::Node(n)) => self.store_node(*n, v, false),
            _ => self.store(v, t),
        }
    }

    fn put(&mut self, r: &Ref, v: Value) -> Result<(), FirmwareError> {
        *self.slot(r)? = v;
        Ok(())
    }

    fn store_node(&mut self, n: usize, v: Value, convert: bool) -> Result<(), FirmwareError> {
        match self.tree.obj(n).cloned() {
            Some(Object::Data(old)) if convert => {
                let new = self.convert_like(&old, v)?;
                self.put(&Ref::Node(n), new)
            }
            Some(Object::Data(_)) => self.put(&Ref::Node(n), v),
            Some(Object::Field(def)) => self.field_write(n, &def, &v),
            Some(Object::BufferField {
                src,
                bit_off,
                bit_len,
            }) => self.buffer_field_write(n, &src, bit_off, bit_len, &v),
            _ => Err(aml_err(format!("cannot store into {}", self.tree.path(n)))),
        }
    }

    /// Implicit result conversion to the type of an existing named object.
    fn convert_like(&self, old: &Value, v: Value) -> Result<Value, FirmwareError> {
        Ok(match old {
            Value::Integer(_) => Value::Integer(self.w.to_int(&v)?),
            Value::String(_) => Value::String(self.w.to_str(&v)?),
            Value::Buffer(ob) => {
                let src = self.w.to_buf(&v)?;
                let mut nb = vec![0u8; ob.len().max(usize::from(ob.is_empty()) * src.len())];
                let n = nb.len().min(src.len());
                nb.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(src.get(..n).unwrap_or_default());
                Value::Buffer(nb)
            }
            _ => v,
        })
    }

    fn store_elem(&mut self, inner: &Ref, i: usize, v: Value) -> Result<(), FirmwareError> {
        let cont = self.read_ref(inner)?;
        if let Value::Reference(r2) = &cont {
            self.enter()?;
            let r = self.store_elem(r2, i, v);
            self.nesting -= 1;
            return r;
        }
        match cont {
            Value::Package(_) => self.put(&Ref::Elem(Box::new(inner.clone()), i), v),
            Value::Buffer(_) | Value::String(_) => {
                let byte = self.w.to_int(&v)? as u8;
                match self.slot(inner)? {
                    Value::Buffer(b) | Value::String(b) => {
                        let slot = b
                            .get_mut(i)
                            .ok_or_else(|| aml_err("buffer index out of range"))?;
                        *slot = byte;
                        Ok(())
                    }
                    _ => Err(aml_err("element store into a non-buffer")),
                }
            }
            other => Err(aml_err(format!("Index store into {}", other.type_name()))),
        }
    }
}

/// Checks that element `i` exists in a package, buffer or string.
pub fn element_len(cont: &Value, i: usize) -> Result<(), FirmwareError> {
    let n = match cont {
        Value::Package(p) => p.len(),
        Value::Buffer(b) | Value::String(b) => b.len(),
        other => return Err(aml_err(format!("Index of {}", other.type_name()))),
    };
    if i < n {
        Ok(())
    } else {
        Err(aml_err(format!("index {i} out of range")))
    }
}

/// Element `i` of a package (the element), buffer or string (a byte as an integer).
pub fn element(cont: &Value, i: usize) -> Result<Value, FirmwareError> {
    let oob = || aml_err(format!("index {i} out of range"));
    match cont {
        Value::Package(p) => p.get(i).cloned().ok_or_else(oob),
        Value::Buffer(b) | Value::String(b) => b
            .get(i)
            .map(|x| Value::Integer(u64::from(*x)))
            .ok_or_else(oob),
        other => Err(aml_err(format!("Index of {}", other.type_name()))),
    }
}

fn ref_is_local(r: &Ref, fi: usize, mark: usize) -> bool {
    match r {
        Ref::Local(f, _) | Ref::Arg(f, _) => *f >= fi,
        Ref::Node(n) => *n >= mark,
        Ref::Elem(inner, _) => ref_is_local(inner, fi, mark),
        Ref::Temp(_) => false,
    }
}

fn skip1<T>(c: &mut Cursor, v: T) -> Result<T, FirmwareError> {
    c.pos += 1;
    Ok(v)
}

/// The end of the term at the cursor when its opcode carries a PkgLength.
fn term_extent(c: &Cursor) -> Option<usize> {
    let mut probe = c.clone();
    let op = probe.byte().ok()?;
    let has_pkg = match op {
        0x10..=0x14 | 0xa0..=0xa2 => true,
        0x5b => matches!(probe.byte().ok()?, 0x81..=0x87),
        _ => false,
    };
    if has_pkg {
        probe.pkg_end().ok()
    } else {
        None
    }
}
