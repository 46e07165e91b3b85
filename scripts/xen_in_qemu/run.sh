#!/usr/bin/env bash
# Boot the Xen host that build.sh made, under TCG (KVM cannot run Xen here), and let dom0
# run the scenarios; each prints "XLSNAP-TIER <scenario> PASS|FAIL ..." on the serial
# console, kept in WORKDIR/serial.log. Exits when dom0 powers off (or after TIMEOUT s).
#   scripts/xen_in_qemu/run.sh WORKDIR [TIMEOUT]
set -euo pipefail
work=$(realpath "${1:?usage: run.sh WORKDIR [TIMEOUT]}")
timeout_s=${2:-2400}
rm -f "$work/serial.log"
timeout "$timeout_s" qemu-system-x86_64 -accel tcg,thread=single -cpu qemu64,+svm,+npt \
    -smp 2 -m 3072 -display none -monitor none -serial "file:$work/serial.log" \
    -no-reboot -nic none -kernel "$work/xen" \
    -append "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=1024M,max:1024M dom0_max_vcpus=1" \
    -initrd "$work/vmlinuz root=/dev/vda rw console=hvc0 init=/xlsnap-tier/init,$work/initrd.img" \
    -drive "file=$work/root.img,if=virtio,format=raw,cache=unsafe" || rc=$?
grep -a "XLSNAP-TIER" "$work/serial.log" || true
exit "${rc:-0}"
