#!/usr/bin/env bash
# Boot the real-Xen tier's image (scripts/xen_in_qemu/build.sh) under QEMU/TCG and let
# scenarios.sh, dom0's init, run xlsnap against real xl. Prints the XLSNAP-SCENARIO lines.
#
#   scripts/xen_in_qemu/run.sh [IMAGE_DIR]     # default: build (or reuse) the image first
#
# Environment: XLSNAP_XEN_TIMEOUT (seconds QEMU may run, default 1500: a wedged boot must
# not hang CI), XLSNAP_XEN_LOG (the serial log; default serial.log in a fresh folder
# under the cache, printed). The image is never written: dom0 writes to a qcow2 overlay.
# Exit: 0 every scenario passed; 1 a scenario failed; 2 no XLSNAP-DONE (timeout, crash).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${XLSNAP_XEN_CACHE:-/var/tmp/xlsnap-xen}
limit=${XLSNAP_XEN_TIMEOUT:-1500}
say() { printf 'xen-run: %s\n' "$*" >&2; }

image=${1:-}
if [ -z "$image" ]; then
    image=$("$here/build.sh")
fi
for f in xen vmlinuz initrd.img root.img; do
    [ -s "$image/$f" ] || { say "missing $image/$f (run build.sh)"; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { say "qemu-system-x86_64 is missing"; exit 2; }

rundir=$(mktemp -d "$cache/run.XXXXXX")
log=${XLSNAP_XEN_LOG:-$rundir/serial.log}
cleanup() { rm -rf "$rundir"; }
trap cleanup EXIT
qemu-img create -q -f qcow2 -F raw -b "$image/root.img" "$rundir/root.qcow2"

say "booting Xen (timeout ${limit} s), serial log: $log"
# guest_loglvl=none: the HVM firmware's debug lines would land inside dom0's lines.
start=$SECONDS
timeout --kill-after=30 "$limit" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu qemu64,+svm,+npt -smp 2 -m 3072 \
    -display none -monitor none -serial "file:$log" -no-reboot -nic none \
    -kernel "$image/xen" \
    -append "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=none dom0_mem=1024M,max:1024M dom0_max_vcpus=1" \
    -initrd "$image/vmlinuz root=/dev/vda rw console=hvc0 init=/root/scenarios.sh,$image/initrd.img" \
    -drive "file=$rundir/root.qcow2,if=virtio,format=qcow2,cache=unsafe" &
qemu=$!   # timeout's pid; QEMU is its child
peak=0
while kill -0 "$qemu" 2>/dev/null; do
    for child in $(pgrep -P "$qemu" || true); do
        rss=$(awk '/^VmHWM:/{print $2}' "/proc/$child/status" 2>/dev/null || true)
        if [ -n "$rss" ] && [ "$rss" -gt "$peak" ]; then peak=$rss; fi
    done
    sleep 2
done
qrc=0
wait "$qemu" || qrc=$?
say "QEMU exited ($qrc) after $((SECONDS - start)) s; peak RSS $((peak / 1024)) MiB; overlay $(du -m "$rundir/root.qcow2" | cut -f1) MiB"

"$here/summary.sh" "$log"
if ! tr -d '\r' <"$log" | grep -a -q '^XLSNAP-DONE'; then
    say "no XLSNAP-DONE in the serial log: the run did not finish"
    [ -n "${XLSNAP_XEN_LOG:-}" ] || cp "$log" "$cache/last-serial.log"
    exit 2
fi
[ -n "${XLSNAP_XEN_LOG:-}" ] || cp "$log" "$cache/last-serial.log"
if tr -d '\r' <"$log" | grep -a -q '^XLSNAP-SCENARIO [^ ]* FAIL'; then
    exit 1
fi
exit 0
