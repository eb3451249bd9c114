#!/bin/sh
# Cost against input size: `tphctl list --dump` and `tphctl session --dump` (start-up: read the
# dump, build the emulated host, take one device over, answer `cap`) on generated machines of
# 25,000, 50,000 and 100,000 functions, in one hyperfine run; prints the growth per doubling
# (linear is 2.0x) and the peak memory of each command on the largest (GNU time).
# Needs: hyperfine (Debian package), GNU time (package time) for the memory figures, a Rust
# toolchain. Usage: bench/dump-scale.sh [WORKDIR]
set -eu
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
cargo build --release -q -p tphctl --example gen_machine
cargo build --release -q -p tphctl
tphctl=$PWD/target/release/tphctl
for n in 25000 50000 100000; do
    [ -s "$work/m$n.lspci" ] || target/release/examples/gen_machine dump $n > "$work/m$n.lspci"
done
echo cap > "$work/cap.in"
json="$work/dump-scale.json"
# Through the shell (for the session's stdin); hyperfine subtracts the shell's own start-up.
hyperfine --warmup 1 --runs 10 --output=null --export-json "$json" \
    -n list-25k "$tphctl list --dump $work/m25000.lspci" \
    -n list-50k "$tphctl list --dump $work/m50000.lspci" \
    -n list-100k "$tphctl list --dump $work/m100000.lspci" \
    -n session-25k "$tphctl session --dump $work/m25000.lspci 0000:01:00.0 < $work/cap.in" \
    -n session-50k "$tphctl session --dump $work/m50000.lspci 0000:01:00.0 < $work/cap.in" \
    -n session-100k "$tphctl session --dump $work/m100000.lspci 0000:01:00.0 < $work/cap.in"
means=$(sed -n 's/.*"mean": *\([0-9.eE+-]*\).*/\1/p' "$json" | tr '\n' ' ')
echo "$means" | awk '{
    printf "list --dump:    25k %.3f s, 50k %.3f s (x%.2f), 100k %.3f s (x%.2f)\n", $1, $2, $2 / $1, $3, $3 / $2;
    printf "session --dump: 25k %.3f s, 50k %.3f s (x%.2f), 100k %.3f s (x%.2f)\n", $4, $5, $5 / $4, $6, $6 / $5 }'
if [ -x /usr/bin/time ]; then
    for c in "list --dump $work/m100000.lspci" "session --dump $work/m100000.lspci 0000:01:00.0"; do
        /usr/bin/time -f "peak %M KB: tphctl $c" "$tphctl" $c < "$work/cap.in" > /dev/null
    done
fi
