#!/usr/bin/env bash
# Builds the QEMU root for the real-kernel rig: a minimal Debian trixie (QEMU 11.1 needs its C
# library) with qemu-system-x86 from trixie-backports, which has the vfio-user client. Called by
# .ci/guest-deps as `root.sh DIR MIRROR`, where MIRROR is the archive address the machine's own apt
# sources use (no host name is written here). DIR must not exist yet; it is built beside it and
# moved into place only when complete.
set -euo pipefail
dir=${1:?root.sh DIR MIRROR}
mirror=${2:?root.sh DIR MIRROR}
tmp="$dir.partial"
rm -rf "$tmp"
debootstrap --variant=minbase trixie "$tmp" "$mirror"
printf 'Types: deb\nURIs: %s\nSuites: trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" > "$tmp/etc/apt/sources.list.d/backports.sources"
chroot "$tmp" apt-get update
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends -t trixie-backports qemu-system-x86
chroot "$tmp" apt-get clean
mv "$tmp" "$dir"
