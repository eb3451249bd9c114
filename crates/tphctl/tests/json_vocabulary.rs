//! One JSON vocabulary across `list`, `show`, `session` and `vm` (README-json.md, "One
//! vocabulary"): on one emulated function (02:00.0 of the default machine, below root port
//! 00:02.0, its ST table in the capability), a thing the four subcommands all report (the
//! Control register, the table's location, size and entries, the root port, the modes, a tag
//! with its memory type and width, a command's outcome) has the same key and the same JSON
//! value in each, taken before anything changes the device.

mod common;

use serde_json::Value;

const BDF: &str = "02:00.0";
const FULL_BDF: &str = "0000:02:00.0";

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"))
}

/// `list --emulated --json`'s row for the function.
fn list_row(dir: &std::path::Path) -> Value {
    let rows = json(&common::tphctl(dir, &["list", "--emulated", "--json"]));
    rows.as_array()
        .expect("array")
        .iter()
        .find(|r| r["bdf"] == FULL_BDF)
        .cloned()
        .unwrap_or_else(|| panic!("no {FULL_BDF} in {rows}"))
}

/// `show --emulated --json BDF`'s object (with the emulated host's default firmware owners).
fn show_object(dir: &std::path::Path) -> Value {
    let v = json(&common::tphctl(dir, &["show", "--emulated", "--json", BDF]));
    v[0].clone()
}

/// The `session --json` replies to `script`, one per line.
fn session(script: &[u8]) -> Vec<Value> {
    let o = common::tphctl_stdin(&["session", "--emulated", BDF, "--json"], script);
    common::json_lines(&o)
}

/// The `vm --json` replies to `script`, one per line.
fn vm(script: &[u8]) -> Vec<Value> {
    let o = common::tphctl_stdin(
        &["vm", "--emulated", BDF, "--pin", "0:1,1:2", "--json"],
        script,
    );
    common::json_lines(&o)
}

/// Whether `v` is a BDF as every document writes it: `DDDD:BB:DD.F`, lower-case hex.
fn is_full_bdf(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b[r].iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    b.len() == 12
        && (b[4], b[7], b[10]) == (b':', b':', b'.')
        && hex(0..4)
        && hex(5..7)
        && hex(8..10)
        && hex(11..12)
}

#[test]
fn vocabulary_control_table_and_entries_are_one_shape_in_all_four() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = list_row(dir.path());
    let show = show_object(dir.path());
    let s = session(b"cap\nshow\n");
    let v = vm(b"host\nguest\n");
    let (cap, s_show, host, guest) = (&s[0], &s[1], &v[0], &v[1]);

    // Control: one object, equal everywhere while the device is untouched.
    let control = &show["tph"]["control"];
    assert!(control.is_object(), "show: {control}");
    assert_eq!(control["raw_hex"], "0x00000000", "{control}");
    assert_eq!(&list["tph"]["control"], control, "list");
    assert_eq!(&s_show["control"], control, "session show");
    assert_eq!(&host["control"], control, "vm host");
    assert_eq!(&guest["control"], control, "vm guest");

    // Table location and size.
    let location = &show["tph"]["table_location"];
    assert_eq!(location, "capability");
    assert_eq!(&list["tph"]["table_location"], location, "list");
    assert_eq!(&s_show["table_location"], location, "session show");
    assert_eq!(&host["table_location"], location, "vm host");
    let size = &show["tph"]["table_size"];
    assert!(size.as_u64().is_some_and(|n| n > 0), "{size}");
    assert_eq!(&list["tph"]["table_size"], size, "list");
    assert_eq!(&cap["table_size"], size, "session cap");
    assert_eq!(&s_show["table_size"], size, "session show");
    assert_eq!(&host["table_size"], size, "vm host");

    // Entries: `{index, st, st_hex}` objects (show adds its owner fields to them).
    let bare =
        |e: &Value| serde_json::json!({"index": e["index"], "st": e["st"], "st_hex": e["st_hex"]});
    let entries: Vec<Value> = show["tph"]["entries"]
        .as_array()
        .expect("show entries")
        .iter()
        .map(bare)
        .collect();
    assert_eq!(entries.len() as u64, size.as_u64().unwrap_or(0));
    assert_eq!(
        entries[1],
        serde_json::json!({"index": 1, "st": 0, "st_hex": "0x0000"})
    );
    assert_eq!(
        s_show["entries"],
        Value::from(entries.clone()),
        "session show"
    );
    assert_eq!(host["entries"], Value::from(entries), "vm host");

    // Modes: the same names, as an array of strings.
    let modes = &show["enable"]["modes"];
    assert_eq!(&list["enable"]["modes"], modes, "list");
    let offered = cap["modes"].as_array().expect("session cap modes");
    assert!(!offered.is_empty());
    assert!(
        offered
            .iter()
            .all(|m| modes.as_array().is_some_and(|a| a.contains(m))),
        "session cap modes {offered:?} named as in show {modes}"
    );
}

#[test]
fn vocabulary_root_port_and_bdfs_are_one_shape_in_list_and_show() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = list_row(dir.path());
    let show = show_object(dir.path());
    assert_eq!(list["bdf"], show["bdf"]);
    assert!(is_full_bdf(&show["bdf"]), "{}", show["bdf"]);
    let port = &show["root_port"];
    assert_eq!(port["bdf"], "0000:00:02.0", "{port}");
    assert_eq!(port["completer"], "tph", "{port}");
    assert_eq!(&list["root_port"], port, "list");
    assert!(is_full_bdf(&port["bdf"]));
    // The row holds no second spelling of what it shares with show.
    for old in ["root_port_completer", "control_mode", "enable_ok", "modes"] {
        assert!(list.get(old).is_none(), "list still has {old}: {list}");
    }
}

#[test]
fn vocabulary_tag_memory_type_and_width_match_show_in_vm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let show = show_object(dir.path());
    let v = vm(b"enable iv\ndsm 1\nguest\n");
    let (dsm, guest) = (&v[1], &v[2]);
    // A tag is `st` and `st_hex`, as in show's entries.
    let st = dsm["st"].as_u64().expect("dsm st");
    assert_eq!(dsm["st_hex"], format!("{st:#06x}"), "{dsm}");
    let entry = &show["tph"]["entries"][0];
    let e = entry["st"].as_u64().expect("entry st");
    assert_eq!(entry["st_hex"], format!("{e:#06x}"));
    // Memory type as show's owners name it.
    assert_eq!(dsm["mem"], "vm", "{dsm}");
    let owner = &entry["owners"][0];
    assert!(owner["mem"] == "vm" || owner["mem"] == "pm", "{entry}");
    // Width in bits, matching the requester type named in Control, as show's owners_width.
    assert_eq!(guest["control"]["requester_enable"], "tph", "{guest}");
    assert_eq!(dsm["width"], 8, "{dsm}");
    assert_eq!(show["enable"]["requester_enable"], "tph");
    assert_eq!(show["tph"]["owners_width"], 8);
}

#[test]
fn vocabulary_outcome_fields_are_always_present_in_session_and_vm() {
    let s = session(b"cap\nbogus\n");
    let v = vm(b"guest\nbogus\n");
    for (who, replies) in [("session", &s), ("vm", &v)] {
        assert_eq!(replies.len(), 2, "{who}");
        for (i, r) in replies.iter().enumerate() {
            for key in ["cmd", "line", "ok", "errno", "error"] {
                assert!(r.get(key).is_some(), "{who}: {key} missing in {r}");
            }
            assert_eq!(r["line"], i + 1, "{who}: {r}");
        }
        assert_eq!(replies[0]["ok"], true, "{who}");
        assert_eq!(replies[0]["error"], Value::Null, "{who}");
        assert_eq!(replies[1]["ok"], false, "{who}");
        assert!(replies[1]["error"].is_string(), "{who}");
    }
    assert_eq!(s[0]["warning"], Value::Null, "{}", s[0]);
}
