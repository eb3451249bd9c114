#!/bin/sh
# Server scale for sysfs, in one hyperfine run: on generated trees of 2,048 and 4,096
# functions (63 root ports with 64 TPH endpoints each at 4,096), the floor (reading every
# function's `config` file once: `cat` of them all), `tphctl list --sysfs ROOT`, `tphctl show
# --sysfs ROOT --lspci`, and the real `lspci -A linux-sysfs -O sysfs.path=ROOT/bus/pci -vvv`.
# Prints tphctl against the floor and against lspci, and tphctl's growth from 2,048 to 4,096.
# Needs: hyperfine and pciutils (Debian packages), a Rust toolchain.
# Usage: bench/sysfs-scale.sh [WORKDIR]
set -eu
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
cargo build --release -q -p tphctl --example gen_machine
cargo build --release -q -p tphctl
tphctl=$PWD/target/release/tphctl
for n in 2048 4096; do
    [ -d "$work/sys$n" ] || target/release/examples/gen_machine sysfs $n "$work/sys$n"
done
json="$work/sysfs-scale.json"
# Through the shell for all (the floor needs its glob); hyperfine subtracts the shell.
hyperfine --warmup 3 --runs 20 --output=null --export-json "$json" \
    -n floor-4096 "cat $work/sys4096/bus/pci/devices/*/config" \
    -n tphctl-list-4096 "$tphctl list --sysfs $work/sys4096" \
    -n tphctl-lspci-4096 "$tphctl show --sysfs $work/sys4096 --lspci" \
    -n lspci-4096 "lspci -A linux-sysfs -O sysfs.path=$work/sys4096/bus/pci -vvv" \
    -n floor-2048 "cat $work/sys2048/bus/pci/devices/*/config" \
    -n tphctl-list-2048 "$tphctl list --sysfs $work/sys2048"
means=$(sed -n 's/.*"mean": *\([0-9.eE+-]*\).*/\1/p' "$json" | tr '\n' ' ')
echo "$means" | awk '{
    printf "4096 functions: floor %.1f ms, tphctl list %.1f ms (%.2fx the floor), show --lspci %.1f ms (%.2fx), lspci -vvv %.1f ms (tphctl list %.1fx faster)\n",
        $1 * 1000, $2 * 1000, $2 / $1, $3 * 1000, $3 / $1, $4 * 1000, $4 / $2;
    printf "2048 functions: floor %.1f ms, tphctl list %.1f ms (%.2fx the floor); tphctl list 2048 -> 4096: x%.2f\n",
        $5 * 1000, $6 * 1000, $6 / $5, $2 / $6 }'
