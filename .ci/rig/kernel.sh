#!/usr/bin/env bash
# Builds the rig's guest kernel: `kernel.sh DEB CONFIG DIR` unpacks the linux-source package DEB
# (its one source tarball), configures it as `make tinyconfig` plus the options of CONFIG, checks
# that each of them stuck, and builds the bzImage and the module build tree with the machine's
# own compiler, so that `make -C DIR/linux M=...` builds out-of-tree modules for it. DIR must not
# exist yet; it is built beside it and moved into place only when complete.
set -euo pipefail
deb=${1:?kernel.sh DEB CONFIG DIR}
config=$(realpath "${2:?kernel.sh DEB CONFIG DIR}")
dir=${3:?kernel.sh DEB CONFIG DIR}
tmp="$dir.partial"
rm -rf "$tmp"
mkdir -p "$tmp/unpack"
dpkg-deb -x "$deb" "$tmp/unpack"
tarball=$(find "$tmp/unpack/usr/src" -maxdepth 1 -name 'linux-source-*.tar.*' | head -n1)
[ -n "$tarball" ] || { echo "kernel.sh: no source tarball in $deb" >&2; exit 1; }
tar -xf "$tarball" -C "$tmp"
rm -rf "$tmp/unpack"
src=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
mv "$src" "$tmp/linux"
cd "$tmp/linux"
make -s tinyconfig
grep -v '^#' "$config" | grep . >> .config
make -s olddefconfig
missing=0
while IFS= read -r line; do
    grep -qx -- "$line" .config || { echo "kernel.sh: $line did not stick" >&2; missing=1; }
done < <(grep -v '^#' "$config" | grep .)
[ "$missing" = 0 ] || exit 1
jobs=$(nproc)
make -s -j"$jobs" bzImage modules
make -s modules_prepare
cd - > /dev/null
mv "$tmp" "$dir"
