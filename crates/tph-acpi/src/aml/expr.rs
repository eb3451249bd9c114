//! Expression opcodes (ACPI 6.5 section 20.2.5): data objects, locals/args, names and method
//! invocations, arithmetic, logic, conversions, Index/DerefOf/SizeOf/Concatenate/Mid/Match.

use super::cursor::{is_name_start, Cursor};
use super::exec::{element_len, Machine, Target};
use super::namespace::{NamePath, Object};
use super::value::{explicit_str_to_int, join_bytes, type_err, Ref, Value};
use crate::FirmwareError;

fn aml_err(why: impl Into<String>) -> FirmwareError {
    FirmwareError::Aml(why.into())
}

impl Machine<'_> {
    /// Evaluates one TermArg (or runs one definition, yielding no value).
    pub fn eval(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        self.tick()?;
        self.enter()?;
        let r = self.eval_inner(c);
        self.nesting -= 1;
        r
    }

    fn eval_inner(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let at = c.pos;
        let op = c.byte()?;
        match op {
            0x00 => Ok(Value::Integer(0)),
            0x01 => Ok(Value::Integer(1)),
            0xff => Ok(Value::Integer(self.w.ones())),
            0x0a => Ok(Value::Integer(c.le(1)?)),
            0x0b => Ok(Value::Integer(c.le(2)?)),
            0x0c => Ok(Value::Integer(c.le(4)?)),
            0x0e => Ok(Value::Integer(self.w.trunc(c.le(8)?))),
            0x0d => Ok(Value::String(c.cstring()?)),
            0x11 => self.buffer(c),
            0x12 => self.package(c, false),
            0x13 => self.package(c, true),
            0x60..=0x6e => {
                let v = self.frame_value(op)?;
                self.charge(weight(&v))?;
                Ok(v)
            }
            0x5b => self.ext_op(c, at),
            b if is_name_start(b) => {
                c.pos = at;
                self.name_term(c)
            }
            _ => self.simple_op(c, op, at),
        }
    }

    fn simple_op(&mut self, c: &mut Cursor, op: u8, at: usize) -> Result<Value, FirmwareError> {
        match op {
            0x06 | 0x08 | 0x10 | 0x14 | 0x15 | 0x8a..=0x8d | 0x8f => self.define(c, op, at),
            0x70 => self.op_store(c, false),
            0x9d => self.op_store(c, true),
            0x71 => self.target_value(c, true),
            0x72 | 0x74 | 0x77 | 0x79..=0x7f | 0x85 => self.binary(c, op),
            0x73 => self.concat(c),
            0x75 | 0x76 => self.inc_dec(c, op == 0x75),
            0x78 => self.divide(c),
            0x80..=0x82 => self.unary(c, op),
            0x83 => self.deref(c),
            0x84 => self.concat_res(c),
            0x86 => self.notify(c),
            0x87 => self.size_of(c),
            0x88 => self.index(c),
            0x89 => self.match_op(c),
            0x8e => self.object_type(c),
            0x90..=0x95 => self.logic(c, op),
            0x96..=0x99 | 0x9c => self.convert(c, op),
            0x9e => self.mid(c),
            _ => Err(aml_err(format!("unsupported opcode {op:#04x} at {at:#x}"))),
        }
    }

    fn ext_op(&mut self, c: &mut Cursor, at: usize) -> Result<Value, FirmwareError> {
        let op = c.byte()?;
        match op {
            0x01 | 0x02 | 0x13 | 0x80..=0x88 => self.define_ext(c, op, at),
            0x12 => self.cond_ref_of(c),
            0x21 | 0x22 => self.int_arg(c).map(|_| Value::Uninitialized),
            0x23 => {
                self.target(c)?;
                c.le(2)?;
                Ok(Value::Integer(0))
            }
            0x24 | 0x26 | 0x27 => self.target(c).map(|_| Value::Uninitialized),
            0x25 => {
                self.target(c)?;
                self.int_arg(c)?;
                Ok(Value::Integer(0))
            }
            0x28 | 0x29 => self.bcd(c, op == 0x29),
            0x30 => Ok(Value::Integer(0x2020_0925)),
            0x33 => Ok(Value::Integer(0)),
            0x32 => {
                let (kind, code) = (c.byte()?, c.le(4)?);
                let arg = self.int_arg(c)?;
                Err(aml_err(format!("Fatal({kind:#x}, {code:#x}, {arg:#x})")))
            }
            _ => Err(aml_err(format!(
                "unsupported opcode 0x5b{op:02x} at {at:#x}"
            ))),
        }
    }

    /// A name in expression position: a method invocation or the named object's value.
    fn name_term(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let p = c.name()?;
        let node = self.resolve(&p)?;
        match self.tree.obj(node) {
            Some(Object::Method { args, .. }) => {
                let (vals, aliases) = self.call_args(c, *args)?;
                self.call_with(node, vals, aliases)
            }
            Some(Object::Osi) => {
                let arg = self.eval(c)?;
                self.osi(&arg)
            }
            Some(Object::External { kind: 8, args }) => {
                self.args(c, *args)?;
                Err(FirmwareError::NotFound(self.tree.path(node)))
            }
            _ => self.read_node(node),
        }
    }

    /// `\_OSI (String)`: Ones for an interface this host claims, else Zero.
    pub fn osi(&self, arg: &Value) -> Result<Value, FirmwareError> {
        let Value::String(s) = arg else {
            return Err(type_err("a string", arg));
        };
        let yes = OSI_INTERFACES.iter().any(|i| i.as_bytes() == s.as_slice());
        Ok(Value::Integer(if yes { self.w.ones() } else { 0 }))
    }

    fn args(&mut self, c: &mut Cursor, n: u8) -> Result<Vec<Value>, FirmwareError> {
        (0..n).map(|_| self.eval(c)).collect()
    }

    /// Evaluates a method's arguments; a local, arg or name holding a buffer or package is
    /// passed as an alias of the caller's object instead of a copy.
    fn call_args(
        &mut self,
        c: &mut Cursor,
        n: u8,
    ) -> Result<(Vec<Value>, [Option<Ref>; 7]), FirmwareError> {
        let mut vals = Vec::with_capacity(usize::from(n));
        let mut aliases: [Option<Ref>; 7] = Default::default();
        for i in 0..usize::from(n) {
            let save = c.pos;
            if let Some(r) = self.shared_place(c)? {
                vals.push(Value::Uninitialized);
                if let Some(slot) = aliases.get_mut(i) {
                    *slot = Some(r);
                }
                continue;
            }
            c.pos = save;
            vals.push(self.eval(c)?);
        }
        Ok((vals, aliases))
    }

    /// The place an argument term names when it holds a buffer or package (consumed), else None.
    fn shared_place(&mut self, c: &mut Cursor) -> Result<Option<Ref>, FirmwareError> {
        let fi = self.fi();
        let r = match c.peek() {
            Some(op @ 0x60..=0x67) => Ref::Local(fi, op - 0x60),
            Some(op @ 0x68..=0x6e) => Ref::Arg(fi, op - 0x68),
            Some(b) if is_name_start(b) => {
                let p = c.name()?;
                match self.tree.lookup(self.scope(), &p) {
                    Some(n) => Ref::Node(n),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        if matches!(r, Ref::Local(..) | Ref::Arg(..)) {
            c.pos += 1;
        }
        let shared = matches!(self.borrow(&r), Some(Value::Buffer(_) | Value::Package(_)));
        Ok(shared.then_some(r))
    }

    fn buffer(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let end = c.pkg_end()?;
        let saved = c.end;
        c.end = end;
        let size = self.int_arg(c);
        c.end = saved;
        let size = usize::try_from(size?).unwrap_or(usize::MAX);
        self.check_alloc(size)?;
        let init = c.code.get(c.pos..end).unwrap_or_default();
        let mut b = init.to_vec();
        if b.len() < size {
            b.resize(size, 0);
        }
        c.pos = end;
        Ok(Value::Buffer(b))
    }

    /// Fails when a requested allocation is above the limit.
    pub fn check_alloc(&mut self, n: usize) -> Result<(), FirmwareError> {
        if n > self.limits.max_alloc {
            return Err(FirmwareError::Limit(format!("allocation of {n} bytes")));
        }
        self.charge(n)
    }

    /// Counts bytes created or copied; fails once the evaluation's budget is spent, so a loop
    /// copying large buffers cannot run for minutes within the step limit.
    pub fn charge(&mut self, n: usize) -> Result<(), FirmwareError> {
        self.copied = self.copied.saturating_add(n);
        if self.copied > self.limits.max_total_alloc {
            let max = self.limits.max_total_alloc;
            return Err(FirmwareError::Limit(format!(
                "more than {max} bytes created or copied"
            )));
        }
        Ok(())
    }

    fn package(&mut self, c: &mut Cursor, var: bool) -> Result<Value, FirmwareError> {
        let end = c.pkg_end()?;
        let saved = c.end;
        c.end = end;
        let r = self.package_body(c, var);
        c.end = saved;
        c.pos = end;
        r
    }

    fn package_body(&mut self, c: &mut Cursor, var: bool) -> Result<Value, FirmwareError> {
        let n = if var {
            self.int_arg(c)?
        } else {
            u64::from(c.byte()?)
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.check_alloc(n)?;
        let mut elems = Vec::new();
        while c.more() {
            elems.push(self.package_element(c)?);
        }
        elems.resize(n, Value::Uninitialized);
        Ok(Value::Package(elems))
    }

    fn package_element(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        match c.peek() {
            Some(b) if is_name_start(b) => {
                let p = c.name()?;
                Ok(match self.tree.lookup(self.scope(), &p) {
                    Some(n) => Value::Reference(Ref::Node(n)),
                    None => Value::String(p.to_string().into_bytes()),
                })
            }
            _ => self.eval(c),
        }
    }

    fn op_store(&mut self, c: &mut Cursor, copy: bool) -> Result<Value, FirmwareError> {
        let v = self.eval(c)?;
        let t = self.target(c)?;
        if copy {
            self.copy_object(v.clone(), &t)?;
        } else {
            self.store(v.clone(), &t)?;
        }
        Ok(v)
    }

    /// RefOf: the target as a reference value.
    fn target_value(&mut self, c: &mut Cursor, _ref_of: bool) -> Result<Value, FirmwareError> {
        match self.target(c)? {
            Target::Place(r) => Ok(Value::Reference(r)),
            Target::Discard => Err(aml_err("RefOf the Debug object")),
        }
    }

    fn cond_ref_of(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let found = match c.peek() {
            Some(b) if is_name_start(b) => {
                let p = c.name()?;
                let n = self.tree.lookup(self.scope(), &p);
                n.filter(|n| !matches!(self.tree.obj(*n), Some(Object::External { .. })))
                    .map(Ref::Node)
            }
            _ => match self.target(c)? {
                Target::Place(r) => Some(r),
                Target::Discard => None,
            },
        };
        let t = self.target(c)?;
        let Some(r) = found else {
            return Ok(Value::Integer(0));
        };
        self.store(Value::Reference(r), &t)?;
        Ok(Value::Integer(self.w.ones()))
    }

    fn binary(&mut self, c: &mut Cursor, op: u8) -> Result<Value, FirmwareError> {
        let a = self.int_arg(c)?;
        let b = self.int_arg(c)?;
        let r = match op {
            0x72 => a.wrapping_add(b),
            0x74 => a.wrapping_sub(b),
            0x77 => a.wrapping_mul(b),
            0x79 => a
                .checked_shl(u32::try_from(b).unwrap_or(u32::MAX))
                .unwrap_or(0),
            0x7a => a
                .checked_shr(u32::try_from(b).unwrap_or(u32::MAX))
                .unwrap_or(0),
            0x7b => a & b,
            0x7c => !(a & b),
            0x7d => a | b,
            0x7e => !(a | b),
            0x7f => a ^ b,
            _ => a.checked_rem(b).ok_or_else(|| aml_err("Mod by zero"))?,
        };
        let v = Value::Integer(self.w.trunc(r));
        let t = self.target(c)?;
        self.store(v.clone(), &t)?;
        Ok(v)
    }

    fn divide(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let a = self.int_arg(c)?;
        let b = self.int_arg(c)?;
        let rem_t = self.target(c)?;
        let quo_t = self.target(c)?;
        let (q, r) = match (a.checked_div(b), a.checked_rem(b)) {
            (Some(q), Some(r)) => (q, r),
            _ => return Err(aml_err("Divide by zero")),
        };
        self.store(Value::Integer(r), &rem_t)?;
        self.store(Value::Integer(q), &quo_t)?;
        Ok(Value::Integer(q))
    }

    fn unary(&mut self, c: &mut Cursor, op: u8) -> Result<Value, FirmwareError> {
        let a = self.int_arg(c)?;
        let r = match op {
            0x80 => self.w.trunc(!a),
            0x81 if a == 0 => 0,
            0x81 => 64 - u64::from(a.leading_zeros()),
            _ if a == 0 => 0,
            _ => u64::from(a.trailing_zeros()) + 1,
        };
        let v = Value::Integer(r);
        let t = self.target(c)?;
        self.store(v.clone(), &t)?;
        Ok(v)
    }

    fn inc_dec(&mut self, c: &mut Cursor, inc: bool) -> Result<Value, FirmwareError> {
        let t = self.target(c)?;
        let Target::Place(r) = &t else {
            return Err(aml_err("Increment of the Debug object"));
        };
        let old = self.read_ref(r)?;
        let a = self.w.to_int(&old)?;
        let n = if inc {
            a.wrapping_add(1)
        } else {
            a.wrapping_sub(1)
        };
        let v = Value::Integer(self.w.trunc(n));
        self.store(v.clone(), &t)?;
        Ok(v)
    }

    fn logic(&mut self, c: &mut Cursor, op: u8) -> Result<Value, FirmwareError> {
        let truth = match op {
            0x92 => self.int_arg(c)? == 0,
            0x90 | 0x91 => {
                let a = self.int_arg(c)? != 0;
                let b = self.int_arg(c)? != 0;
                if op == 0x90 {
                    a && b
                } else {
                    a || b
                }
            }
            _ => {
                let a = self.eval(c)?;
                let b = self.eval(c)?;
                let ord = self.compare(&a, &b)?;
                match op {
                    0x93 => ord.is_eq(),
                    0x94 => ord.is_gt(),
                    _ => ord.is_lt(),
                }
            }
        };
        Ok(Value::Integer(if truth { self.w.ones() } else { 0 }))
    }

    /// Compares `b` converted to the type of `a`.
    pub fn compare(&self, a: &Value, b: &Value) -> Result<std::cmp::Ordering, FirmwareError> {
        match a {
            Value::Integer(x) => Ok(x.cmp(&self.w.to_int(b)?)),
            Value::String(x) => Ok(x.as_slice().cmp(self.w.to_str(b)?.as_slice())),
            Value::Buffer(x) => Ok(x.as_slice().cmp(self.w.to_buf(b)?.as_slice())),
            other => Err(type_err("an integer, string or buffer", other)),
        }
    }

    fn concat(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let a = self.eval(c)?;
        let b = self.eval(c)?;
        let v = match &a {
            Value::Integer(_) => Value::Buffer([self.w.to_buf(&a)?, self.w.to_buf(&b)?].concat()),
            Value::String(s) => Value::String([s.clone(), self.w.to_str(&b)?].concat()),
            Value::Buffer(x) => Value::Buffer([x.clone(), self.w.to_buf(&b)?].concat()),
            other => return Err(type_err("an integer, string or buffer", other)),
        };
        self.result(c, v)
    }

    fn result(&mut self, c: &mut Cursor, v: Value) -> Result<Value, FirmwareError> {
        if let Value::Buffer(b) | Value::String(b) = &v {
            self.check_alloc(b.len())?;
        }
        let t = self.target(c)?;
        self.store(v.clone(), &t)?;
        Ok(v)
    }

    fn concat_res(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let a = self.eval(c)?;
        let b = self.eval(c)?;
        let strip = |v: &Value| -> Result<Vec<u8>, FirmwareError> {
            let Value::Buffer(x) = v else {
                return Err(type_err("a buffer", v));
            };
            let n = if x.len() >= 2 && x.get(x.len() - 2) == Some(&0x79) {
                x.len() - 2
            } else {
                x.len()
            };
            Ok(x.get(..n).unwrap_or_default().to_vec())
        };
        let v = Value::Buffer([strip(&a)?, strip(&b)?, vec![0x79, 0]].concat());
        self.result(c, v)
    }

    fn deref(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        match self.eval(c)? {
            Value::Reference(r) => self.read_ref(&r),
            Value::String(s) => {
                let text = String::from_utf8_lossy(&s).into_owned();
                let p = NamePath::parse_text(&text)
                    .ok_or_else(|| aml_err(format!("DerefOf bad name {text:?}")))?;
                let n = self.resolve(&p)?;
                self.read_node(n)
            }
            other => Err(type_err("a reference", &other)),
        }
    }

    fn notify(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        self.target(c)?;
        self.int_arg(c)?;
        Ok(Value::Uninitialized)
    }

    /// The value behind a SuperName operand, following one reference.
    fn super_value(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let Target::Place(r) = self.target(c)? else {
            return Err(aml_err("operand is the Debug object"));
        };
        match self.read_ref(&r)? {
            Value::Reference(r2) => self.read_ref(&r2),
            v => Ok(v),
        }
    }

    fn size_of(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let n = match self.super_value(c)? {
            Value::String(s) | Value::Buffer(s) => s.len(),
            Value::Package(p) => p.len(),
            // ACPICA answers the integer width for an integer (the spec leaves it undefined).
            Value::Integer(_) => self.w.bytes,
            other => return Err(type_err("a string, buffer or package", &other)),
        };
        Ok(Value::Integer(n as u64))
    }

    fn index(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let src = self.place(c)?;
        let i = self.int_arg(c)?;
        let i = usize::try_from(i).unwrap_or(usize::MAX);
        let src = match self.borrow(&src) {
            Some(Value::Reference(r2)) => r2.clone(),
            Some(cont) => {
                element_len(cont, i)?;
                src
            }
            None => match self.read_ref(&src)? {
                Value::Reference(r2) => r2,
                cont => {
                    element_len(&cont, i)?;
                    src
                }
            },
        };
        let v = Value::Reference(Ref::Elem(Box::new(src), i));
        let t = self.target(c)?;
        self.store(v.clone(), &t)?;
        Ok(v)
    }

    fn match_op(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let pkg = self.eval(c)?;
        let (op1, v1) = (c.byte()?, self.eval(c)?);
        let (op2, v2) = (c.byte()?, self.eval(c)?);
        let start = self.int_arg(c)?;
        let Value::Package(items) = pkg else {
            return Err(type_err("a package", &pkg));
        };
        for (i, e) in items
            .iter()
            .enumerate()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
        {
            if self.match_one(e, op1, &v1) && self.match_one(e, op2, &v2) {
                return Ok(Value::Integer(i as u64));
            }
        }
        Ok(Value::Integer(self.w.ones()))
    }

    fn match_one(&self, e: &Value, op: u8, v: &Value) -> bool {
        if op == 0 {
            return true;
        }
        let Ok(ord) = self.compare(e, v) else {
            return false;
        };
        match op {
            1 => ord.is_eq(),
            2 => ord.is_le(),
            3 => ord.is_lt(),
            4 => ord.is_ge(),
            5 => ord.is_gt(),
            _ => false,
        }
    }

    fn object_type(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let code = match self.target(c)? {
            Target::Discard => 16,
            Target::Place(Ref::Node(n)) => self.tree.obj(n).map_or(0, |o| o.type_code()),
            Target::Place(r) => match self.read_ref(&r)? {
                Value::Reference(Ref::Node(n)) => self.tree.obj(n).map_or(0, |o| o.type_code()),
                v => v.type_code(),
            },
        };
        Ok(Value::Integer(code))
    }

    fn convert(&mut self, c: &mut Cursor, op: u8) -> Result<Value, FirmwareError> {
        let a = self.eval(c)?;
        let v = match op {
            0x96 => Value::Buffer(self.w.to_buf(&a)?),
            0x97 => Value::String(self.decimal_string(&a)?),
            0x98 => Value::String(self.hex_string(&a)?),
            0x99 => Value::Integer(self.to_integer(&a)?),
            _ => {
                let len = self.int_arg(c)?;
                Value::String(to_string(&a, len)?)
            }
        };
        self.result(c, v)
    }

    fn to_integer(&self, a: &Value) -> Result<u64, FirmwareError> {
        match a {
            Value::String(s) => Ok(self.w.trunc(explicit_str_to_int(s))),
            other => self.w.to_int(other),
        }
    }

    fn decimal_string(&self, a: &Value) -> Result<Vec<u8>, FirmwareError> {
        match a {
            Value::Integer(i) => Ok(self.w.trunc(*i).to_string().into_bytes()),
            Value::Buffer(b) => Ok(join_bytes(b, ",", |x| x.to_string())),
            Value::String(s) => Ok(s.clone()),
            other => Err(type_err("an integer, string or buffer", other)),
        }
    }

    fn hex_string(&self, a: &Value) -> Result<Vec<u8>, FirmwareError> {
        match a {
            Value::Integer(_) => self.w.to_str(a),
            Value::Buffer(b) => Ok(join_bytes(b, ",", |x| format!("0x{x:02X}"))),
            Value::String(s) => Ok(s.clone()),
            other => Err(type_err("an integer, string or buffer", other)),
        }
    }

    fn mid(&mut self, c: &mut Cursor) -> Result<Value, FirmwareError> {
        let a = self.eval(c)?;
        let start = usize::try_from(self.int_arg(c)?).unwrap_or(usize::MAX);
        let len = usize::try_from(self.int_arg(c)?).unwrap_or(usize::MAX);
        let cut = |b: &[u8]| b.iter().skip(start).take(len).copied().collect::<Vec<u8>>();
        let v = match &a {
            Value::String(s) => Value::String(cut(s)),
            Value::Buffer(b) => Value::Buffer(cut(b)),
            other => return Err(type_err("a string or buffer", other)),
        };
        self.result(c, v)
    }

    fn bcd(&mut self, c: &mut Cursor, to: bool) -> Result<Value, FirmwareError> {
        let a = self.int_arg(c)?;
        let r = if to { to_bcd(a) } else { from_bcd(a) };
        self.result(c, Value::Integer(self.w.trunc(r)))
    }
}

/// Interfaces `\_OSI` answers true for: the Windows versions and feature strings ACPICA
/// 20200925 enables by default (what a Linux host answers; "Linux" itself is false).
const OSI_INTERFACES: [&str; 21] = [
    "Windows 2000",
    "Windows 2001",
    "Windows 2001 SP1",
    "Windows 2001.1",
    "Windows 2001 SP2",
    "Windows 2001.1 SP1",
    "Windows 2006",
    "Windows 2006.1",
    "Windows 2006 SP1",
    "Windows 2006 SP2",
    "Windows 2009",
    "Windows 2012",
    "Windows 2013",
    "Windows 2015",
    "Windows 2016",
    "Windows 2017",
    "Windows 2017.2",
    "Windows 2018",
    "Windows 2018.2",
    "Windows 2019",
    "Extended Address Space Descriptor",
];

/// Shallow size of a value, for the copy budget.
pub fn weight(v: &Value) -> usize {
    match v {
        Value::Buffer(b) | Value::String(b) => b.len(),
        Value::Package(p) => p.len().saturating_mul(16),
        _ => 8,
    }
}

fn to_string(a: &Value, len: u64) -> Result<Vec<u8>, FirmwareError> {
    let Value::Buffer(b) = a else {
        return Err(type_err("a buffer", a));
    };
    let max = usize::try_from(len).unwrap_or(usize::MAX);
    Ok(b.iter()
        .take(max)
        .take_while(|&&x| x != 0)
        .copied()
        .collect())
}

fn to_bcd(mut a: u64) -> u64 {
    let mut r = 0u64;
    for shift in (0..64).step_by(4) {
        r |= (a % 10) << shift;
        a /= 10;
        if a == 0 {
            break;
        }
    }
    r
}

fn from_bcd(a: u64) -> u64 {
    (0..16).rev().fold(0u64, |acc, i| {
        acc.wrapping_mul(10).wrapping_add((a >> (4 * i)) & 0xf)
    })
}
