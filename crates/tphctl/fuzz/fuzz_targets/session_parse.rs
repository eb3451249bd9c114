//! Fuzzes the `tphctl session` language: the input is a whole script, read line by line with
//! the bounded reader `session` uses, each line parsed. Asserts, beyond no panic: a refused
//! line's message stays short (it quotes at most 40 characters of the line), a parsed command
//! written back in its canonical form parses to the same command, and the parse does not
//! depend on how the words are spaced.
//!
//! Seeds: the session scripts of the tests and the README's examples (`fuzz/seeds/session_parse`):
//!   cargo +nightly fuzz run session_parse fuzz/corpus/session_parse fuzz/seeds/session_parse
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_client::{MemType, Mode};
use tphctl::session::{parse, Command};

/// The longest refusal: the unknown-command list and a quoted word of 40 characters.
const MAX_MESSAGE: usize = 400;

fn mem(m: MemType) -> &'static str {
    match m {
        MemType::Volatile => "vm",
        MemType::Persistent => "pm",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The command as a line in the language's canonical spelling.
fn canonical(cmd: &Command) -> String {
    match cmd {
        Command::Cap => "cap".into(),
        Command::Enable(Mode::Iv) => "enable iv".into(),
        Command::Enable(Mode::Ds) => "enable ds".into(),
        Command::Enable(other) => panic!("a mode the language has no word for: {other:?}"),
        Command::Disable => "disable".into(),
        Command::Irqs(n) => format!("irqs {n}"),
        Command::GetSt(q) => {
            let words: Vec<String> = q
                .iter()
                .map(|q| format!("{}:{}", q.cpu, mem(q.mem)))
                .collect();
            format!("get-st {}", words.join(" "))
        }
        Command::SetSt(e) => {
            let words: Vec<String> = e
                .iter()
                .map(|e| format!("{}=0x{:x}:{}", e.index, e.cpu, mem(e.mem)))
                .collect();
            format!("set-st {}", words.join(" "))
        }
        Command::Clear(i) => {
            let words: Vec<String> = i.iter().map(|i| format!("{i:#x}")).collect();
            format!("clear {}", words.join(" "))
        }
        Command::Reset => "reset".into(),
        Command::Reopen => "reopen".into(),
        Command::Show => "show".into(),
        Command::Trace => "trace".into(),
        Command::Raw(b) => format!("raw {}", hex(b)),
        Command::Feature(b) => format!("feature {}", hex(b)),
        Command::CfgRead { offset, len } => format!("cfg-read {offset:#x} {len}"),
        Command::CfgWrite { offset, data } => format!("cfg-write {offset} {}", hex(data)),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = std::io::Cursor::new(data);
    let mut buf = Vec::new();
    for number in 1.. {
        let line = match tphctl::lines::read_bounded_line(&mut input, &mut buf, number) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(bad))) => {
                assert!(bad.quoted.len() <= MAX_MESSAGE, "{}", bad.quoted.len());
                continue;
            }
            Ok(None) => break,
            Err(e) => panic!("an in-memory read failed: {e}"),
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = parse(line);
        let spaced = line.split_whitespace().collect::<Vec<_>>().join("  ");
        assert_eq!(parse(&spaced), parsed, "{line:?}");
        match parsed {
            Ok(cmd) => {
                let again = canonical(&cmd);
                assert_eq!(parse(&again).as_ref(), Ok(&cmd), "{line:?} -> {again:?}");
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.len() <= MAX_MESSAGE, "{} bytes: {text}", text.len());
            }
        }
    }
});
