//! Writes a generated server-sized machine for the benchmarks in `bench/`:
//!
//! ```sh
//! cargo run --release -p tphctl --example gen_machine -- dump 100000 > machine.lspci
//! cargo run --release -p tphctl --example gen_machine -- dump-full 1000 > full.lspci
//! cargo run --release -p tphctl --example gen_machine -- sysfs 4096 ROOT
//! ```
#![forbid(unsafe_code)]

#[path = "../tests/common/synth.rs"]
mod synth;

use std::io::Write;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || std::io::Error::other("usage: gen_machine dump|dump-full N | sysfs N ROOT");
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).ok_or_else(usage)?;
    match (args.first().map(String::as_str), args.get(2)) {
        (Some(mode @ ("dump" | "dump-full")), None) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match mode {
                "dump" => synth::write_dump(n, &mut out)?,
                _ => synth::write_full_dump(n, &mut out)?,
            }
            out.flush()
        }
        (Some("sysfs"), Some(root)) => synth::write_sysfs(n, std::path::Path::new(root)),
        _ => Err(usage()),
    }
}
