#!/bin/sh
# Times `tphctl show --dump FILE --lspci` against the real `lspci -vvv -F FILE` on the largest
# shared dump, in one hyperfine run, and prints how many times faster tphctl is.
# Needs: hyperfine and pciutils (Debian packages), a Rust toolchain.
# Usage: bench/lspci-vs-tphctl.sh [DUMP]
set -eu
cd "$(dirname "$0")/.."
dump=${1:-crates/tph-regs/tests/data/machine-caf6526.lspci}
cargo build --release -q -p tphctl
tphctl=target/release/tphctl
json=$(mktemp)
trap 'rm -f "$json"' EXIT
# -N: no intermediate shell, so the figures are the two programs alone.
# Both exit non-zero legitimately (tphctl: 1 = no TPH function in the dump), so ignore status.
hyperfine -N --warmup 5 --min-runs 50 --ignore-failure --export-json "$json" \
    -n tphctl "$tphctl show --dump $dump --lspci" \
    -n lspci "lspci -vvv -F $dump"
# The two "mean" fields, in command order.
means=$(sed -n 's/.*"mean": *\([0-9.eE+-]*\).*/\1/p' "$json" | tr '\n' ' ')
echo "$means" | awk -v d="$dump" '{ printf "%s: tphctl mean %.3f ms, lspci mean %.3f ms, tphctl is %.1fx faster\n", d, $1 * 1000, $2 * 1000, $2 / $1 }'
# Minimums too: on a shared, loaded machine they are the least disturbed figures.
mins=$(sed -n 's/.*"min": *\([0-9.eE+-]*\).*/\1/p' "$json" | tr '\n' ' ')
echo "$mins" | awk '{ printf "minimum: tphctl %.3f ms, lspci %.3f ms, ratio %.1fx\n", $1 * 1000, $2 * 1000, $2 / $1 }'
