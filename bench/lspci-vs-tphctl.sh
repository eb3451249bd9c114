#!/bin/sh
# Times `tphctl show --dump FILE --lspci` against the real `lspci -vvv -F FILE` on every shipped
# server dump (crates/tph-regs/tests/data/*.lspci, the same files as the shared config dumps),
# and `tphctl --version` against a program that only prints a line (the start-up floor), all in
# one hyperfine run, and prints the ratios (median and minimum: on a shared, loaded machine the
# minimum is the least disturbed figure).
# Needs: hyperfine and pciutils (Debian packages), a Rust toolchain.
# Usage: bench/lspci-vs-tphctl.sh [DUMP...]
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- crates/tph-regs/tests/data/*.lspci
cargo build --release -q -p tphctl
tphctl=$PWD/target/release/tphctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'fn main() { println!("tphctl 0.1.0"); }\n' > "$work/floor.rs"
rustc -O -o "$work/floor" "$work/floor.rs"
dumps=$(printf '%s,' "$@" | sed 's/,$//')
# -N: no intermediate shell, so the figures are the programs alone. Both exit non-zero
# legitimately (tphctl: 1 = no TPH function in the dump), so ignore status.
hyperfine -N --warmup 5 --min-runs 40 --ignore-failure --export-json "$work/run.json" \
    -L dump "$dumps" \
    "$tphctl show --dump {dump} --lspci" \
    "lspci -vvv -F {dump}" \
    "$tphctl --version" \
    "$work/floor" > /dev/null
python3 - "$work/run.json" <<'PY'
import json, sys
runs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
def pick(prefix):
    return {c: r for c, r in runs.items() if c.startswith(prefix) or f" {prefix}" in c}
for c, t in runs.items():
    if " show --dump " not in c:
        continue
    dump = c.split(" show --dump ")[1].split(" --lspci")[0]
    l = runs[f"lspci -vvv -F {dump}"]
    print(f"{dump}: tphctl median {t['median']*1e3:.3f} ms (min {t['min']*1e3:.3f}), "
          f"lspci median {l['median']*1e3:.3f} ms (min {l['min']*1e3:.3f}): "
          f"{l['median']/t['median']:.1f}x (min {l['min']/t['min']:.1f}x)")
v = [r for c, r in runs.items() if c.endswith(" --version")]
f = [r for c, r in runs.items() if c.endswith("/floor")]
vm = min(r["median"] for r in v); fm = min(r["median"] for r in f)
print(f"tphctl --version median {vm*1e3:.3f} ms, min {min(r['min'] for r in v)*1e3:.3f} ms; "
      f"a program printing one line: median {fm*1e3:.3f} ms, min {min(r['min'] for r in f)*1e3:.3f} ms")
PY
