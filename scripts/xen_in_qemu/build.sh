#!/usr/bin/env bash
# Build a Xen 4.17 host to run inside QEMU (reference/xen-in-qemu.md): a Debian bookworm
# dom0 root filesystem made with debootstrap from the mirror apt already uses, with xlsnap
# and its wheels installed inside (dom0 has no network), a tiny PV guest (dom0's kernel
# and a busybox initrd), and the scenarios of scripts/xen_in_qemu/scenarios.py.
#   scripts/xen_in_qemu/build.sh WORKDIR     -> WORKDIR/{root.img,xen,vmlinuz,initrd.img}
# The debootstrap result is kept in WORKDIR/rootfs.base and reused by later builds.
set -euo pipefail
work=$(realpath -m "${1:?usage: build.sh WORKDIR}")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$repo/scripts/xen_in_qemu"
mkdir -p "$work"
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
packages=xen-hypervisor-4.17-amd64,xen-utils-4.17,xen-utils-common,qemu-system-xen,qemu-utils
packages=$packages,linux-image-amd64,python3,python3-pip,busybox-static,iproute2,kmod,udev
packages=$packages,procps,cpio
if [ ! -e "$work/rootfs.base/.complete" ]; then
    rm -rf "$work/rootfs.base"
    echo "build: debootstrap from $mirror" >&2
    debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs.base" "$mirror" \
        > "$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
    rm -f "$work/rootfs.base"/var/cache/apt/archives/*.deb
    touch "$work/rootfs.base/.complete"
fi
rootfs="$work/rootfs"
rm -rf "$rootfs"
cp -a "$work/rootfs.base" "$rootfs"

# xlsnap and its dependencies as wheels, installed with dom0's own pip
python=${PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || python=python3
rm -rf "$work/wheels" && mkdir -p "$work/wheels"
"$python" -m pip wheel -q --wheel-dir "$work/wheels" "$repo" >&2
mkdir -p "$rootfs/opt/xlsnap-wheels"
cp "$work/wheels"/*.whl "$rootfs/opt/xlsnap-wheels/"
chroot "$rootfs" python3 -m pip install -q --break-system-packages --no-index \
    --find-links /opt/xlsnap-wheels xlsnap >&2

# the tier's own files, and a guest that needs no OS: busybox as init
mkdir -p "$rootfs/xlsnap-tier/guest/bin"
install -m 0755 "$here/dom0-init.sh" "$rootfs/xlsnap-tier/init"
install -m 0644 "$here/scenarios.py" "$rootfs/xlsnap-tier/scenarios.py"
cp "$rootfs/bin/busybox" "$rootfs/xlsnap-tier/guest/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo GUEST-UP\nexec /bin/busybox sleep 1000000\n' \
    > "$rootfs/xlsnap-tier/guest/init"
chmod 0755 "$rootfs/xlsnap-tier/guest/init"
chroot "$rootfs" sh -c 'cd /xlsnap-tier/guest && find . | cpio -o -H newc 2>/dev/null | gzip > /xlsnap-tier/guest-initrd.gz'

kernel=$(ls "$rootfs"/boot/vmlinuz-* | head -n 1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | head -n 1)
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
ln -sf "/boot/$(basename "$kernel")" "$rootfs/xlsnap-tier/vmlinuz"
zcat "$rootfs"/boot/xen-4.17-amd64.gz > "$work/xen"
rm -f "$work/root.img"
mkfs.ext4 -q -F -L xenroot -d "$rootfs" "$work/root.img" 3G
rm -rf "$rootfs"
echo "build: $work/root.img ready" >&2
