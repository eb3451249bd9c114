#!/usr/bin/env bash
# One run, both sides: the tag map for 256 processor UIDs from benches/st_map.asl.
#   acpiexec: hyperfine runs `evaluate NOP_` (process start-up + table load + the UID loop
#             without _DSM calls) and `evaluate MAP_` (the same plus 256 _DSM calls); the
#             difference is acpiexec's cost of the 256 evaluations. acpiexec's wall time is
#             dominated by idle waits in its debugger front end (user+sys CPU is a few ms of a
#             ~1 s run), so the CPU-time difference is the honest interpreter figure; the
#             wall-time difference is printed too.
#   ours:     criterion, `st_map_256_rust_query` (256 _DSM queries from Rust) and
#             `st_map_256_aml_loop_MAP_` minus `..._NOP_` (the very loop acpiexec runs).
# Needs iasl, acpiexec, hyperfine, python3. Usage: bash crates/tph-acpi/benches/st_map_vs_acpiexec.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
iasl -p "$tmp/st_map" crates/tph-acpi/benches/st_map.asl >/dev/null
hyperfine -N --warmup 3 --runs "${RUNS:-40}" --export-json "$tmp/acpiexec.json" \
    "acpiexec -b \"evaluate NOP_\" $tmp/st_map.aml" \
    "acpiexec -b \"evaluate MAP_\" $tmp/st_map.aml" >/dev/null
cargo bench -q -p tph-acpi --bench st_map -- --noplot >"$tmp/criterion.log" 2>&1 || { cat "$tmp/criterion.log"; exit 1; }
python3 - "$tmp/acpiexec.json" target/criterion <<'PY'
import json, sys, os
h = json.load(open(sys.argv[1]))["results"]
crit = sys.argv[2]
def ours(name):
    return json.load(open(os.path.join(crit, name, "new", "estimates.json")))["mean"]["point_estimate"] / 1e9
nop, mp = h
cpu = lambda r: r["user"] + r["system"]  # hyperfine's mean user and system seconds per run
a_cpu = cpu(mp) - cpu(nop)
a_wall = mp["mean"] - nop["mean"]
rust = ours("st_map_256_rust_query")
loop = ours("st_map_256_aml_loop_MAP_") - ours("st_map_256_aml_loop_NOP_")
print(f"acpiexec, 256 _DSM evaluations (MAP_ - NOP_): CPU {a_cpu*1e3:.3f} ms, wall {a_wall*1e3:.1f} ms "
      f"(NOP_ run {nop['mean']*1e3:.1f} ms wall, {cpu(nop)*1e3:.2f} ms CPU)")
print(f"ours, 256 queries from Rust:                 {rust*1e3:.3f} ms")
print(f"ours, same in-AML loop (MAP_ - NOP_):        {loop*1e3:.3f} ms")
print(f"speed-up vs acpiexec CPU time: {a_cpu/rust:.1f}x (Rust query), {a_cpu/loop:.1f}x (AML loop)")
PY
