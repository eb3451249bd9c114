//! Named-object definitions (Name, Scope, Device, Method, Alias, External, OperationRegion,
//! Field, IndexField, BankField, CreateXxxField, ...) and field access through the host's
//! region handler.

use super::cursor::Cursor;
use super::exec::{Flow, Machine};
use super::namespace::{Code, CreateError, FieldDef, NamePath, Object};
use super::value::{type_err, Ref, Value};
use crate::FirmwareError;

fn aml_err(why: impl Into<String>) -> FirmwareError {
    FirmwareError::Aml(why.into())
}

/// Field flags, for the field list parser.
struct FieldCtx {
    region: usize,
    index: Option<usize>,
    bank: Option<(usize, u64)>,
    access: u8,
}

impl Machine<'_> {
    /// Creates `p` in the current scope.
    pub fn create(&mut self, p: &NamePath, obj: Object) -> Result<usize, FirmwareError> {
        let scope = self.scope();
        self.tree.create(scope, p, obj).map_err(|e| match e {
            CreateError::Exists(_) => aml_err(format!("{p} already exists")),
            CreateError::NoScope => FirmwareError::NotFound(format!("scope of {p}")),
            CreateError::Empty => aml_err("definition with the null name"),
        })
    }

    /// One-byte-opcode definitions (opcode consumed).
    pub fn define(&mut self, c: &mut Cursor, op: u8, at: usize) -> Result<Value, FirmwareError> {
        match op {
            0x06 => {
                let (src, alias) = (c.name()?, c.name()?);
                let target = self.resolve(&src)?;
                self.create(&alias, Object::Alias(target))?;
            }
            0x08 => {
                let p = c.name()?;
                let v = self.eval(c)?;
                self.create(&p, Object::Data(v))?;
            }
            0x10 => self.scope_op(c)?,
            0x14 => self.method_def(c)?,
            0x15 => {
                let p = c.name()?;
                let (kind, args) = (c.byte()?, c.byte()?);
                let scope = self.scope();
                self.tree.declare_external(scope, &p, kind, args);
            }
            _ => self.create_field(c, op, at)?,
        }
        Ok(Value::Uninitialized)
    }

    fn scope_op(&mut self, c: &mut Cursor) -> Result<(), FirmwareError> {
        let end = c.pkg_end()?;
        let p = c.name()?;
        let node = self.resolve(&p)?;
        self.body(c, node, end)
    }

    /// Runs a scope body (Scope, Device, Processor, ...) with `node` as the current scope.
    fn body(&mut self, c: &mut Cursor, node: usize, end: usize) -> Result<(), FirmwareError> {
        let old = self.set_scope(node);
        let r = self.exec_list(c, end);
        self.set_scope(old);
        c.pos = end;
        match r? {
            Flow::Next => Ok(()),
            _ => Err(aml_err("control flow escaping a scope body")),
        }
    }

    fn method_def(&mut self, c: &mut Cursor) -> Result<(), FirmwareError> {
        let end = c.pkg_end()?;
        let p = c.name()?;
        let flags = c.byte()?;
        let code = Code {
            table: c.table,
            start: c.pos,
            end,
        };
        let obj = Object::Method {
            code,
            args: flags & 7,
            serialized: flags & 8 != 0,
        };
        c.pos = end;
        self.create(&p, obj).map(|_| ())
    }

    fn create_field(&mut self, c: &mut Cursor, op: u8, at: usize) -> Result<(), FirmwareError> {
        let src = self.place(c)?;
        let idx = self.int_arg(c)?;
        let (bit_off, bit_len) = match op {
            0x8a => (idx.saturating_mul(8), 32),
            0x8b => (idx.saturating_mul(8), 16),
            0x8c => (idx.saturating_mul(8), 8),
            0x8d => (idx, 1),
            0x8f => (idx.saturating_mul(8), 64),
            0x13 => (idx, self.int_arg(c)?),
            _ => return Err(aml_err(format!("unsupported opcode {op:#04x} at {at:#x}"))),
        };
        let p = c.name()?;
        let buf = match self.read_ref(&src)? {
            Value::Reference(r) => self.read_ref(&r)?,
            v => v,
        };
        let Value::Buffer(b) = &buf else {
            return Err(type_err("a buffer", &buf));
        };
        let fits = bit_off
            .checked_add(bit_len)
            .is_some_and(|e| e <= b.len() as u64 * 8);
        if !fits || bit_len == 0 {
            return Err(aml_err(format!(
                "field {p} ({bit_len} bits at bit {bit_off}) exceeds its {}-byte buffer",
                b.len()
            )));
        }
        self.create(
            &p,
            Object::BufferField {
                src,
                bit_off,
                bit_len,
            },
        )
        .map(|_| ())
    }

    /// Two-byte (0x5b-prefixed) definitions (both bytes consumed).
    pub fn define_ext(
        &mut self,
        c: &mut Cursor,
        op: u8,
        at: usize,
    ) -> Result<Value, FirmwareError> {
        match op {
            0x01 => {
                let p = c.name()?;
                c.byte()?;
                self.create(&p, Object::Mutex)?;
            }
            0x02 => {
                let p = c.name()?;
                self.create(&p, Object::Event)?;
            }
            0x13 => self.create_field(c, op, at)?,
            0x80 => self.region(c)?,
            0x81 | 0x86 | 0x87 => self.field_op(c, op)?,
            0x88 => {
                let p = c.name()?;
                for _ in 0..3 {
                    self.eval(c)?;
                }
                self.create(
                    &p,
                    Object::Region {
                        space: 0xff,
                        offset: 0,
                        len: 0,
                    },
                )?;
            }
            _ => self.container(c, op)?,
        }
        Ok(Value::Uninitialized)
    }

    fn region(&mut self, c: &mut Cursor) -> Result<(), FirmwareError> {
        let p = c.name()?;
        let space = c.byte()?;
        let offset = self.int_arg(c)?;
        let len = self.int_arg(c)?;
        self.create(&p, Object::Region { space, offset, len })
            .map(|_| ())
    }

    /// Device, Processor, PowerResource, ThermalZone: a named scope with a body.
    fn container(&mut self, c: &mut Cursor, op: u8) -> Result<(), FirmwareError> {
        let end = c.pkg_end()?;
        let p = c.name()?;
        let obj = match op {
            0x82 => Object::Device,
            0x83 => {
                let id = c.byte()?;
                c.bytes(5)?;
                Object::Processor(id)
            }
            0x84 => {
                c.bytes(3)?;
                Object::PowerResource
            }
            0x85 => Object::ThermalZone,
            _ => return Err(aml_err(format!("unsupported opcode 0x5b{op:02x}"))),
        };
        let node = self.create(&p, obj)?;
        self.body(c, node, end)
    }

    fn field_op(&mut self, c: &mut Cursor, op: u8) -> Result<(), FirmwareError> {
        let end = c.pkg_end()?;
        let first = c.name()?;
        let first = self.resolve(&first)?;
        let mut ctx = FieldCtx {
            region: first,
            index: None,
            bank: None,
            access: 1,
        };
        if op == 0x86 {
            let data = c.name()?;
            ctx = FieldCtx {
                region: self.resolve(&data)?,
                index: Some(first),
                ..ctx
            };
        } else if op == 0x87 {
            let bank = c.name()?;
            let bank = self.resolve(&bank)?;
            let value = self.int_arg(c)?;
            ctx.bank = Some((bank, value));
        }
        ctx.access = access_bytes(c.byte()?);
        let saved = c.end;
        c.end = end;
        let r = self.field_list(c, &mut ctx);
        c.end = saved;
        c.pos = end;
        r
    }

    fn field_list(&mut self, c: &mut Cursor, ctx: &mut FieldCtx) -> Result<(), FirmwareError> {
        let mut bit = 0u64;
        while c.more() {
            match c.peek() {
                Some(0x00) => {
                    c.pos += 1;
                    bit = bit.saturating_add(c.pkg_value()?);
                }
                Some(0x01) => {
                    c.pos += 1;
                    ctx.access = access_bytes(c.byte()?);
                    c.byte()?;
                }
                Some(0x02) => {
                    c.pos += 1;
                    self.eval(c)?;
                }
                Some(0x03) => {
                    c.pos += 1;
                    c.bytes(3)?;
                }
                _ => bit = self.named_field(c, ctx, bit)?,
            }
        }
        Ok(())
    }

    fn named_field(
        &mut self,
        c: &mut Cursor,
        ctx: &FieldCtx,
        bit: u64,
    ) -> Result<u64, FirmwareError> {
        let seg = NamePath {
            segs: vec![c.bytes(4)?.try_into().unwrap_or(*b"____")],
            ..NamePath::default()
        };
        let len = c.pkg_value()?;
        let def = FieldDef {
            region: ctx.region,
            index: ctx.index,
            bit_off: bit,
            bit_len: len,
            access: ctx.access,
            bank: ctx.bank,
        };
        self.create(&seg, Object::Field(def))?;
        Ok(bit.saturating_add(len))
    }

    /// Reads a field unit through the region handler.
    pub fn field_read(&mut self, node: usize, def: &FieldDef) -> Result<Value, FirmwareError> {
        let nbytes = usize::try_from(def.bit_len.div_ceil(8)).unwrap_or(usize::MAX);
        self.check_alloc(nbytes)?;
        let mut out = vec![0u8; nbytes];
        for (unit, lo, hi) in units(def) {
            let raw = self.unit_access(node, def, unit, None)?;
            for b in lo..hi {
                set_bit(
                    &mut out,
                    b - def.bit_off,
                    raw >> (b - unit * unit_bits(def)) & 1 != 0,
                );
            }
        }
        Ok(self.bits_value(out, def.bit_len))
    }

    fn bits_value(&self, out: Vec<u8>, bit_len: u64) -> Value {
        if bit_len <= (self.w.bytes * 8) as u64 {
            Value::Integer(out.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x)))
        } else {
            Value::Buffer(out)
        }
    }

    /// Writes a field unit through the region handler (read-modify-write for partial units).
    pub fn field_write(
        &mut self,
        node: usize,
        def: &FieldDef,
        v: &Value,
    ) -> Result<(), FirmwareError> {
        let data = self.w.to_buf(v)?;
        for (unit, lo, hi) in units(def) {
            let whole = lo == unit * unit_bits(def) && hi == lo + unit_bits(def);
            let mut raw = if whole {
                0
            } else {
                self.unit_access(node, def, unit, None)?
            };
            for b in lo..hi {
                let bit = 1u64 << (b - unit * unit_bits(def));
                raw = if get_bit(&data, b - def.bit_off) {
                    raw | bit
                } else {
                    raw & !bit
                };
            }
            self.unit_access(node, def, unit, Some(raw))?;
        }
        Ok(())
    }

    /// Reads (`write` None) or writes one access unit of a field.
    fn unit_access(
        &mut self,
        node: usize,
        def: &FieldDef,
        unit: u64,
        write: Option<u64>,
    ) -> Result<u64, FirmwareError> {
        if self.field_depth > 8 {
            return Err(FirmwareError::Limit(
                "field accesses nested too deep".into(),
            ));
        }
        self.tick()?;
        self.field_depth += 1;
        let r = self.unit_access_inner(node, def, unit, write);
        self.field_depth -= 1;
        r
    }

    fn unit_access_inner(
        &mut self,
        node: usize,
        def: &FieldDef,
        unit: u64,
        write: Option<u64>,
    ) -> Result<u64, FirmwareError> {
        let byte_off = unit.saturating_mul(u64::from(def.access));
        if let Some(index) = def.index {
            self.store_named(index, Value::Integer(byte_off))?;
            if let Some(v) = write {
                self.store_named(def.region, Value::Integer(v))?;
                return Ok(0);
            }
            let v = self.read_node(def.region)?;
            return self.w.to_int(&v);
        }
        if let Some((bank, value)) = def.bank {
            self.store_named(bank, Value::Integer(value))?;
        }
        let Some(Object::Region { space, offset, .. }) = self.tree.obj(def.region).cloned() else {
            return Err(aml_err(format!(
                "{}: field region is not an OperationRegion",
                self.tree.path(node)
            )));
        };
        let addr = offset.wrapping_add(byte_off);
        let region = self.tree.path(def.region);
        let Some(h) = self.handler.as_mut() else {
            return Err(FirmwareError::NoRegionHandler { region, space });
        };
        let r = match write {
            Some(v) => h.write(space, addr, def.access, v).map(|_| 0),
            None => h.read(space, addr, def.access),
        };
        r.map_err(|why| aml_err(format!("region {region} access at {addr:#x}: {why}")))
    }

    fn store_named(&mut self, node: usize, v: Value) -> Result<(), FirmwareError> {
        self.store(v, &super::exec::Target::Place(Ref::Node(node)))
    }

    /// Reads a buffer field.
    pub fn buffer_field_read(
        &mut self,
        src: &Ref,
        bit_off: u64,
        bit_len: u64,
    ) -> Result<Value, FirmwareError> {
        let buf = self.field_source(src)?;
        let nbytes = usize::try_from(bit_len.div_ceil(8)).unwrap_or(usize::MAX);
        self.check_alloc(nbytes)?;
        let mut out = vec![0u8; nbytes];
        for b in 0..bit_len {
            set_bit(&mut out, b, get_bit(&buf, bit_off + b));
        }
        Ok(self.bits_value(out, bit_len))
    }

    fn field_source(&mut self, src: &Ref) -> Result<Vec<u8>, FirmwareError> {
        match self.read_ref(src)? {
            Value::Buffer(b) => Ok(b),
            Value::Reference(r) => match self.read_ref(&r)? {
                Value::Buffer(b) => Ok(b),
                other => Err(type_err("a buffer", &other)),
            },
            other => Err(type_err("a buffer", &other)),
        }
    }

    /// Writes a buffer field (the value converted to bits, zero-extended or truncated).
    pub fn buffer_field_write(
        &mut self,
        node: usize,
        src: &Ref,
        bit_off: u64,
        bit_len: u64,
        v: &Value,
    ) -> Result<(), FirmwareError> {
        let data = self.w.to_buf(v)?;
        let mut buf = self.field_source(src)?;
        for b in 0..bit_len {
            set_bit(&mut buf, bit_off + b, get_bit(&data, b));
        }
        match src {
            Ref::Temp(_) => {
                if let Some(n) = self.tree.get_mut(node) {
                    n.obj = Object::BufferField {
                        src: Ref::Temp(Box::new(Value::Buffer(buf))),
                        bit_off,
                        bit_len,
                    };
                }
                Ok(())
            }
            _ => {
                let target = match self.read_ref(src)? {
                    Value::Reference(r) => r,
                    _ => src.clone(),
                };
                *self.slot(&target)? = Value::Buffer(buf);
                Ok(())
            }
        }
    }
}

fn access_bytes(flags: u8) -> u8 {
    match flags & 0x0f {
        2 => 2,
        3 => 4,
        4 => 8,
        _ => 1,
    }
}

fn unit_bits(def: &FieldDef) -> u64 {
    u64::from(def.access) * 8
}

/// The access units a field covers: (unit number, first field bit, end field bit) in region bits.
fn units(def: &FieldDef) -> impl Iterator<Item = (u64, u64, u64)> + use<> {
    let ub = unit_bits(def);
    let (start, end) = (def.bit_off, def.bit_off.saturating_add(def.bit_len));
    let first = start / ub;
    let last = if end > start {
        (end - 1) / ub + 1
    } else {
        first
    };
    (first..last).map(move |u| (u, start.max(u * ub), end.min((u + 1) * ub)))
}

fn get_bit(b: &[u8], i: u64) -> bool {
    let byte = usize::try_from(i / 8).ok().and_then(|n| b.get(n));
    byte.is_some_and(|x| x >> (i % 8) & 1 != 0)
}

fn set_bit(b: &mut [u8], i: u64, v: bool) {
    let Some(x) = usize::try_from(i / 8).ok().and_then(|n| b.get_mut(n)) else {
        return;
    };
    if v {
        *x |= 1 << (i % 8);
    } else {
        *x &= !(1 << (i % 8));
    }
}
