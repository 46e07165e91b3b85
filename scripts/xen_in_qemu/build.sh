#!/usr/bin/env bash
# Build the real-Xen test tier's artefacts: a Debian bookworm dom0 root filesystem with
# Xen 4.17, xl, libxl's device model, qemu-utils and xlsnap (plus its wheels: dom0 has no
# network) installed; a tiny PV guest (dom0's kernel + a busybox initrd) and an HVM guest
# (firmware only, no OS), each with a qcow2 disk under /var/lib/xen/images and an xl.cfg in
# /etc/xen. See /work/shared/reference/xen-in-qemu.md for where the recipe comes from.
#
#   scripts/xen_in_qemu/build.sh            # prints the cache folder holding the result
#
# Environment: XLSNAP_XEN_CACHE (default /var/tmp/xlsnap-xen), XLSNAP_XEN_MIRROR (default:
# the mirror apt already uses). Two cached stages, each rebuilt only when its inputs' hash
# changes: base-<hash>.tar (debootstrap, the slow part) and image-<hash>/ (root.img, xen,
# vmlinuz, initrd.img). Needs root, debootstrap, mkfs.ext4 (e2fsprogs), python3 with pip.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${XLSNAP_XEN_CACHE:-/var/tmp/xlsnap-xen}
suite=bookworm
packages=xen-hypervisor-4.17-amd64,xen-utils-4.17,xen-utils-common,qemu-system-xen,qemu-utils,linux-image-amd64,python3,busybox-static,iproute2,kmod,udev,procps,cpio,coreutils,util-linux

say() { printf 'xen-build: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

default_mirror() {
    local src=/etc/apt/sources.list.d/debian.sources
    if [ -r "$src" ]; then
        awk '/^URIs:/{print $2; exit}' "$src"
    elif [ -r /etc/apt/sources.list ]; then
        awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list
    fi
}
mirror=${XLSNAP_XEN_MIRROR:-$(default_mirror)}
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 is missing (apt-get install e2fsprogs)"

mkdir -p "$cache"
chmod 0700 "$cache"

# ---- stage 1: the debootstrapped dom0 (network; 1.5-3 min) -------------------------------
base_key=$(printf '%s\n' "v1" "$suite" "$mirror" "$packages" | sha256sum | cut -c1-16)
base_tar="$cache/base-$base_key.tar"
if [ ! -s "$base_tar" ]; then
    say "debootstrap $suite from $mirror (stage base-$base_key)"
    work="$cache/base-$base_key.work"
    rm -rf "$work"
    mkdir -p "$work"
    start=$SECONDS
    timeout 1500 debootstrap --variant=minbase --include="$packages" \
        "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -f "$work"/rootfs/var/cache/apt/archives/*.deb
    tar -C "$work/rootfs" -cf "$base_tar.part" .
    mv "$base_tar.part" "$base_tar"
    rm -rf "$work"
    say "base done in $((SECONDS - start)) s"
fi

# ---- stage 2: xlsnap and the guests into the image (no network but PyPI; ~1 min) ----------
python=${XLSNAP_XEN_PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
# The inputs: the base, xlsnap's sources as they are in the work tree, this folder's files.
image_key=$(
    {
        printf '%s\n' "v1" "$base_key"
        cd "$repo"
        find pyproject.toml README.md commands ledger projections scripts/xen_in_qemu \
            -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
            | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
)
image="$cache/image-$image_key"
if [ -s "$image/root.img" ]; then
    say "reusing $image"
    printf '%s\n' "$image"
    exit 0
fi
say "building image-$image_key"
start=$SECONDS
work="$cache/image-$image_key.work"
rm -rf "$work"
mkdir -p "$work/rootfs" "$work/src" "$work/wheels"
tar -C "$work/rootfs" -xf "$base_tar"
rootfs="$work/rootfs"

# xlsnap's wheel, built from a copy of the work tree (no build/ or egg-info left behind).
cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/commands" "$repo/ledger" \
    "$repo/projections" "$work/src/"
timeout 600 "$python" -m pip wheel -q --no-deps -w "$work/wheels" "$work/src" >&2
# Its dependencies as dom0's Python 3.11 needs them: binary wheels for CPython 3.11 on
# x86_64 glibc (bookworm has glibc 2.36), downloaded here since dom0 has no network.
platforms=()
for p in manylinux_2_36_x86_64 manylinux_2_34_x86_64 manylinux_2_28_x86_64 \
         manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
pyargs=(--python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none
        "${platforms[@]}" --only-binary=:all:)
wheel=$(find "$work/wheels" -name 'xlsnap-*.whl' -print -quit)
[ -n "$wheel" ] || die "no xlsnap wheel was built"
timeout 600 "$python" -m pip download -q "${pyargs[@]}" -d "$work/wheels" "$wheel" >&2
# Installed into dom0 from those wheels alone, as pip inside dom0 would (--no-index).
timeout 600 "$python" -m pip install -q --no-index --find-links "$work/wheels" "${pyargs[@]}" \
    --target "$rootfs/opt/xlsnap/lib" "$wheel" >&2
rm -rf "$rootfs/opt/xlsnap/lib/bin"
mkdir -p "$rootfs/opt/xlsnap/wheels"
cp "$work/wheels"/*.whl "$rootfs/opt/xlsnap/wheels/"
cat >"$rootfs/usr/local/bin/xlsnap" <<'WRAP'
#!/bin/sh
PYTHONPATH=/opt/xlsnap/lib exec python3 -m commands "$@"
WRAP
chmod 0755 "$rootfs/usr/local/bin/xlsnap"

# The guests: a PV one (dom0's kernel, a busybox initrd) and an HVM one (firmware, no OS).
kernel=$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n 1)
initrd=$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' -printf '%f\n' | sort -V | tail -n 1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
    die "no kernel/initrd in the dom0 image"
fi
mkdir -p "$rootfs/var/lib/xen/images" "$rootfs/root/pvinit/bin" "$rootfs/root/pvinit/proc" \
    "$rootfs/root/pvinit/sys" "$rootfs/root/pvinit/dev"
cp "$rootfs/usr/bin/busybox" "$rootfs/root/pvinit/bin/busybox"
install -m 0755 "$here/guest-init" "$rootfs/root/pvinit/init"
chroot "$rootfs" /bin/sh -c \
    'cd /root/pvinit && find . | cpio -o -H newc --quiet | gzip -1 > /var/lib/xen/images/pv-initrd.gz'
rm -rf "$rootfs/root/pvinit"
sed "s|@KERNEL@|/boot/$kernel|" "$here/pv1.cfg" >"$rootfs/etc/xen/pv1.cfg"
cp "$here/hvm1.cfg" "$rootfs/etc/xen/hvm1.cfg"
install -m 0755 "$here/scenarios.sh" "$rootfs/root/scenarios.sh"
install -m 0755 "$here/qmp_call.py" "$rootfs/root/qmp_call.py"

# Xen itself (multiboot), dom0's kernel and initramfs, next to the root filesystem image.
zcat "$rootfs/boot/xen-4.17-amd64.gz" >"$work/xen"
cp "$rootfs/boot/$kernel" "$work/vmlinuz"
cp "$rootfs/boot/$initrd" "$work/initrd.img"
timeout 600 mkfs.ext4 -q -F -L xenroot -d "$rootfs" "$work/root.img" 3G >&2
rm -rf "$rootfs" "$work/src" "$work/wheels"
rm -rf "$image"
mv "$work" "$image"
# Older images of this cache are superseded.
find "$cache" -maxdepth 1 -name 'image-*' ! -name "image-$image_key" -exec rm -rf {} +
say "image done in $((SECONDS - start)) s"
printf '%s\n' "$image"
