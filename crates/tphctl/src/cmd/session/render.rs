//! Session replies as text (for people) or one JSON object per line (for scripts).

use std::io::{self, Write};

use serde_json::{json, Map, Value};
use tph_client::{Capabilities, CpuQuery};
use tph_regs::tph::{StMode, TphControl};
use tph_report::report::{enable_name, location_name, mode_name, ControlReport, EntryReport};

use crate::cmd::list::{hex16, hex32};
use crate::cmd::tagmap::mem_name;

use tph_kernel::hw::Access;

use super::exec::{Data, Registers, Reply};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The modes GET_CAP reports, named as `list` and `show` name them.
fn modes(c: &Capabilities) -> Vec<&'static str> {
    [
        (c.iv, mode_name(StMode::InterruptVector)),
        (c.ds, mode_name(StMode::DeviceSpecific)),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect()
}

/// Writes `reply` as text: the command echoed after `> `, then its result or `error: ...`.
pub fn text(out: &mut impl Write, r: &Reply) -> io::Result<()> {
    writeln!(out, "> {}", r.cmd)?;
    if let Data::Raw { ret, out: bytes } = &r.data {
        let ret = ret.map_or("-1".to_string(), |v| v.to_string());
        let errno = r.errno.map_or("-", |e| e.name());
        return writeln!(out, "ret {ret} errno {errno} out {}", hex(bytes));
    }
    if let Some(e) = &r.error {
        return writeln!(out, "error: {e}");
    }
    match &r.data {
        Data::None | Data::Raw { .. } => writeln!(out, "ok"),
        Data::Cap(c) => text_cap(out, c),
        Data::Tags(t) => text_tags(out, t),
        Data::Show(regs) => text_show(out, regs),
        Data::Trace(lines) => text_trace(out, lines),
    }?;
    match &r.warning {
        Some(w) => writeln!(out, "warning: {w}"),
        None => Ok(()),
    }
}

fn text_cap(out: &mut impl Write, c: &Capabilities) -> io::Result<()> {
    let m = modes(c);
    let m = if m.is_empty() {
        "none".to_string()
    } else {
        m.join(" ")
    };
    writeln!(out, "modes: {m}; st_table_size: {}", c.st_table_size)
}

fn text_tags(out: &mut impl Write, tags: &[(CpuQuery, u16)]) -> io::Result<()> {
    for (q, st) in tags {
        writeln!(out, "cpu {}:{} st {st:#06x}", q.cpu, mem_name(q.mem))?;
    }
    Ok(())
}

fn text_show(out: &mut impl Write, r: &Registers) -> io::Result<()> {
    let c = TphControl::from_bits(r.control);
    writeln!(
        out,
        "control: {:#010x} (mode {}, requester enable {})",
        r.control,
        mode_name(c.mode),
        enable_name(c.enable)
    )?;
    let set: Vec<String> = r
        .st_table
        .iter()
        .enumerate()
        .filter(|(_, e)| **e != 0)
        .map(|(i, e)| format!("[{i}]={e:#06x}"))
        .collect();
    let set = if set.is_empty() {
        "all zero".to_string()
    } else {
        set.join(" ")
    };
    writeln!(
        out,
        "st_table ({}, {} entries): {set}",
        location_name(r.location),
        r.st_table.len()
    )
}

/// One hardware access as JSON: what, where, the value (and its `0x` string), what changed,
/// and the trace line as text.
fn access_json(a: &Access) -> Value {
    let (kind, at, value, effect) = match *a {
        Access::ConfigRead {
            offset,
            width,
            value,
        } => (
            "config_read",
            json!({"offset": offset, "offset_hex": format!("{offset:#05x}"), "width": width}),
            value,
            None,
        ),
        Access::ConfigWrite {
            offset,
            width,
            value,
            effect,
        } => (
            "config_write",
            json!({"offset": offset, "offset_hex": format!("{offset:#05x}"), "width": width}),
            value,
            Some(effect),
        ),
        Access::MsixRead {
            vector,
            offset,
            value,
        } => (
            "msix_read",
            json!({"vector": vector, "offset": offset}),
            value,
            None,
        ),
        Access::MsixWrite {
            vector,
            offset,
            value,
            effect,
        } => (
            "msix_write",
            json!({"vector": vector, "offset": offset}),
            value,
            Some(effect),
        ),
        // A kind of access this tphctl does not know yet (the model's `Access` is
        // non_exhaustive): named as such, its trace line kept, no made-up fields.
        _ => return json!({"kind": "unknown", "text": a.to_string()}),
    };
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind));
    if let Value::Object(at) = at {
        m.extend(at);
    }
    m.insert("value".into(), json!(value));
    m.insert("value_hex".into(), json!(hex32(value)));
    m.insert("effect".into(), json!(effect.map(|e| e.to_string())));
    m.insert("text".into(), json!(a.to_string()));
    Value::Object(m)
}

fn text_trace(out: &mut impl Write, lines: &[Access]) -> io::Result<()> {
    if lines.is_empty() {
        return writeln!(out, "(no hardware accesses)");
    }
    for l in lines {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// Writes `reply` to line `number` as one JSON object on one line: `cmd`, `line`, `ok`,
/// `errno`, `error`, `warning` (null when they do not apply, as in `vm`) and the results,
/// named and shaped as in `list`, `show` and `vm`.
pub fn json_line(out: &mut impl Write, r: &Reply, number: usize) -> io::Result<()> {
    let mut m = Map::new();
    m.insert("cmd".into(), json!(r.cmd));
    m.insert("line".into(), json!(number));
    m.insert("ok".into(), json!(r.ok()));
    m.insert("errno".into(), json!(r.errno.map(|e| e.name())));
    m.insert("error".into(), json!(r.error));
    m.insert("warning".into(), json!(r.warning));
    json_data(&mut m, &r.data);
    writeln!(out, "{}", Value::Object(m))
}

fn json_data(m: &mut Map<String, Value>, d: &Data) {
    match d {
        Data::None => {}
        Data::Cap(c) => {
            m.insert("modes".into(), json!(modes(c)));
            m.insert("table_size".into(), json!(c.st_table_size));
        }
        Data::Tags(t) => {
            let tags: Vec<Value> = t
                .iter()
                .map(|(q, st)| {
                    json!({"cpu": q.cpu, "mem": mem_name(q.mem), "st": st, "st_hex": hex16(*st)})
                })
                .collect();
            m.insert("tags".into(), Value::Array(tags));
        }
        Data::Show(r) => {
            m.insert("control".into(), json!(ControlReport::from_bits(r.control)));
            m.insert("table_location".into(), json!(location_name(r.location)));
            m.insert("table_size".into(), json!(r.st_table.len()));
            m.insert("entries".into(), json!(EntryReport::table(&r.st_table)));
        }
        Data::Trace(accesses) => {
            let list: Vec<Value> = accesses.iter().map(access_json).collect();
            m.insert("accesses".into(), Value::Array(list));
        }
        Data::Raw { ret, out } => {
            m.insert("ret".into(), json!(ret));
            m.insert("out".into(), json!(hex(out)));
        }
    }
}
