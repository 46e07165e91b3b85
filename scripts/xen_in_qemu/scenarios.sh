#!/bin/bash
# dom0's init in the real-Xen tier (the kernel runs it as init=/root/scenarios.sh).
#
# Starts Xen's services, creates a PV and an HVM guest with real `xl create`, and runs
# xlsnap against real xl, libxl and its device model (`--toolstack xen`). Prints on hvc0
# (Xen forwards it to the serial log), one line per scenario:
#   XLSNAP-SCENARIO <name> PASS|FAIL <detail>
# the raw output of real xl for what tests/fakes/xl models (XLSNAP-XL-* lines), timings
# (XLSNAP-PHASE), and XLSNAP-DONE at the end; then powers off.
# Not `set -e`: every scenario reports its own failure, and init must reach the poweroff.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 PYTHONUNBUFFERED=1

poweroff_now() {
    # The scenario lines again, together: a line broken by another console writer (Xen
    # interleaves its own and the guests' messages) is whole here; the reader keeps the last.
    cat /tmp/scenarios.txt 2>/dev/null
    echo "XLSNAP-DONE"
    sync
    echo o >/proc/sysrq-trigger
    sleep 30
}
trap poweroff_now EXIT

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null || true
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
exec >/dev/hvc0 2>&1 </dev/null
echo 1 >/proc/sys/kernel/sysrq
dmesg -n 1 2>/dev/null || true
hostname dom0
mkdir -p /run/lock /run/xen /var/log/xen

T0=$(date +%s)
say() { echo "XLSNAP-LOG +$(( $(date +%s) - T0 ))s $*"; }
phase() { echo "XLSNAP-PHASE $1 $(( $(date +%s) - T0 ))"; }
mem() { echo "XLSNAP-MEM $1 $(awk '/MemTotal|MemAvailable/{printf "%s=%sk ", $1, $2}' /proc/meminfo) disk: $(df -k / | awk 'NR==2{print $3 "k used, " $4 "k free"}')"; }

# ---- running commands -----------------------------------------------------------------
OUT=/tmp/cmd.out
ERR=/tmp/cmd.err
RC=0
# run TIMEOUT CMD...: runs it, shows it with its output and rc; RC, OUT, ERR keep them.
run() {
    local limit=$1
    shift
    echo "+ $*"
    timeout --kill-after=10 "$limit" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    sed 's/^/  out| /' "$OUT"
    sed 's/^/  err| /' "$ERR"
    echo "  rc=$RC"
    return "$RC"
}
# xs ARGS...: xlsnap against the real toolstack.
xs() { run 400 xlsnap --toolstack xen "$@"; }
# errline: the last line of stderr, for a FAIL's detail.
errline() { tail -n 1 "$ERR" | tr -s '\t ' '  ' | cut -c1-300; }

# xlrec ARGS...: real xl's output, verbatim, for the fake xl to be checked against.
xlrec() {
    echo "XLSNAP-XL-BEGIN xl $*"
    timeout --kill-after=10 300 xl "$@" >"$OUT" 2>"$ERR"
    RC=$?
    sed 's/^/XLSNAP-XL-OUT /' "$OUT"
    sed 's/^/XLSNAP-XL-ERR /' "$ERR"
    echo "XLSNAP-XL-END rc=$RC"
    return "$RC"
}

DETAIL=""
# scenario NAME FUNCTION: runs it; PASS when it returns 0, FAIL with $DETAIL otherwise.
scenario() {
    local name=$1 fn=$2 start
    start=$(date +%s)
    DETAIL=""
    say "scenario $name begins"
    if "$fn"; then
        report "XLSNAP-SCENARIO $name PASS $(( $(date +%s) - start ))s ${DETAIL}"
    else
        report "XLSNAP-SCENARIO $name FAIL $(( $(date +%s) - start ))s ${DETAIL:-no detail}"
    fi
}
# report LINE: prints it, and keeps it for the summary printed before XLSNAP-DONE.
report() {
    echo "$1"
    echo "$1" >>/tmp/scenarios.txt
}
fail() { DETAIL="$*"; return 1; }

# ---- the guests -------------------------------------------------------------------------
G=""          # the guest's name
IMG=""        # its qcow2 disk
UUID=""
DOMID=""
qmp_sock() { echo "/var/run/xen/qmp-libxl-$DOMID"; }
domid_of() { timeout 60 xl domid "$G" 2>/dev/null; }
# state: xl list's state column (r, b, p, ...) of the guest, or "gone".
state() {
    local line
    line=$(timeout 60 xl list "$G" 2>/dev/null | awk 'NR==2{print $5}')
    echo "${line:-gone}"
}
running() {  # alive and not paused
    local st
    st=$(state)
    [ "$st" != gone ] && [[ "$st" != *p* ]]
}
wait_qmp() {
    for _ in $(seq 1 120); do
        DOMID=$(domid_of) && [ -S "$(qmp_sock)" ] && return 0
        sleep 1
    done
    return 1
}

# The disk: 64 MiB qcow2 with a boot sector that idles (for the HVM firmware), 0x5a at
# 64 KiB (never changed) and 0x01 at 1 MiB (region R: each snapshot writes its own byte).
make_disk() {
    python3 - "$IMG.raw" <<'PY'
import sys
sector = bytearray(512)
# sti; hlt; jmp back to the hlt. Not cli: Xen powers off an HVM guest whose every vCPU
# halts with interrupts off (hvm_hlt), and on_poweroff destroys it.
sector[0:4] = b"\xfb\xf4\xeb\xfd"
sector[510:512] = b"\x55\xaa"
with open(sys.argv[1], "wb") as f:
    f.write(sector)
    f.truncate(64 << 20)
PY
    qemu-img convert -f raw -O qcow2 "$IMG.raw" "$IMG" && rm -f "$IMG.raw" &&
        qemu-io -f qcow2 -c "write -P 0x5a 64k 64k" -c "write -P 0x01 1M 64k" "$IMG" >/dev/null
}
# rewrite BYTE: the guest is stopped (xl destroy), BYTE written over region R with qemu-io,
# and the guest created again (a new domid; the ledger follows the uuid). The disk's
# content changes only this way: a running guest's disk belongs to its device model
# (HMP qemu-io through the qdisk node is refused: the xen-block device holds the write
# permission and has no qdev id for `qemu-io -d`), and the guests run no OS that writes.
rewrite() {
    if [ "$(state)" != gone ]; then
        run 120 xl destroy "$G" || return 1
    fi
    run 60 qemu-io -f qcow2 -c "write -P $1 1M 64k" "$IMG" || return 1
    start_guest
}
# up: the guest is running (created again if a scenario before left it gone, unpaused if
# it left it paused); says so when it had to.
up() {
    local st
    st=$(state)
    if [ "$st" = gone ]; then
        say "$G was gone: xl create"
        start_guest >/dev/null
    elif [[ "$st" == *p* ]]; then
        say "$G was left paused: xl unpause"
        timeout 60 xl unpause "$G"
    fi
    DOMID=$(domid_of)
}
start_guest() {
    run 300 xl create "/etc/xen/$G.cfg" || { DETAIL="xl create: $(errline)"; return 1; }
    wait_qmp || { DETAIL="no QMP socket for $G"; return 1; }
}
# content WHICH BYTE: region R of snapshot WHICH (or "current") holds BYTE, and 64 KiB
# holds 0x5a. Read with qemu-img/qemu-io -U: the image may be in use.
content() {
    local which=$1 byte=$2 src=$IMG fmt=qcow2
    if [ "$which" != current ]; then
        src=/tmp/snap.raw
        fmt=raw
        rm -f "$src"
        run 120 qemu-img convert -U -f qcow2 -O raw -l "snapshot.name=$which" "$IMG" "$src" \
            || { DETAIL="cannot read snapshot $which: $(errline)"; return 1; }
    fi
    run 120 qemu-io -U -r -f "$fmt" -c "read -P $byte 1M 64k" -c "read -P 0x5a 64k 64k" "$src"
    if [ "$RC" -ne 0 ] || grep -q -i "fail" "$OUT" "$ERR"; then
        DETAIL="$which: region R is not $byte: $(grep -i -m1 fail "$OUT" "$ERR")"
        return 1
    fi
}
tags() { qemu-img snapshot -U -l "$IMG" 2>/dev/null | awk 'NR>2{print $2}' | tr '\n' ' '; }
has_tag() { [[ " $(tags) " == *" $1 "* ]]; }
img_check() {
    run 300 qemu-img check -U "$IMG"
    [ "$RC" -eq 0 ] || { DETAIL="qemu-img check rc=$RC: $(grep -m1 -i -E 'error|leak' "$OUT")"; return 1; }
}

# ---- the scenarios, for the guest in $G ---------------------------------------------------
s_boot() {
    make_disk || fail "cannot make $IMG"  || return 1
    run 60 qemu-io -f qcow2 -c "write -P 0x11 1M 64k" "$IMG" || fail "qemu-io write" || return 1
    start_guest || return 1
    xlrec list
    xlrec list -l "$G"
    echo "XLSNAP-QMP-BEGIN $G query-block"
    python3 /root/qmp_call.py "$(qmp_sock)" query-block | sed 's/^/XLSNAP-QMP-OUT /'
    echo "XLSNAP-QMP-END"
    DETAIL="domid $DOMID state $(state)"
}
s_create_disk_only() {
    xs snapshot-create --disk-only -n d1 "$G" || fail "rc=$RC: $(errline)" || return 1
    has_tag d1 || fail "no tag d1 on $IMG (tags: $(tags))" || return 1
    running || fail "the domain is $(state) after a disk-only snapshot" || return 1
    content d1 0x11
}
s_create_memory() {
    rewrite 0x22 || fail "cannot rewrite region R: ${DETAIL:-$(errline)}" || return 1
    xs snapshot-create -n m1 "$G" || fail "rc=$RC: $(errline)" || return 1
    has_tag m1 || fail "no tag m1 on $IMG (tags: $(tags))" || return 1
    running || fail "the domain is $(state) after the snapshot (not resumed)" || return 1
    local save="/var/lib/xen/snapshots/$UUID/m1.save" mode
    [ -f "$save" ] || fail "no memory image $save" || return 1
    mode=$(stat -c %a "$save")
    [ "$mode" = 600 ] || fail "memory image mode $mode" || return 1
    DETAIL="memory image $(stat -c %s "$save") bytes"
    content m1 0x22
}
s_list() {
    rewrite 0x33 || fail "cannot rewrite region R: ${DETAIL:-$(errline)}" || return 1
    xs snapshot-list "$G" || fail "rc=$RC: $(errline)" || return 1
    grep -q -w d1 "$OUT" && grep -q -w m1 "$OUT" || fail "d1/m1 not listed" || return 1
}
s_list_long() {
    xs snapshot-list -l "$G" || fail "rc=$RC: $(errline)" || return 1
    grep -q '"d1"' "$OUT" && grep -q '"m1"' "$OUT" || fail "d1/m1 not in -l output" || return 1
}
s_content() {
    content d1 0x11 && content m1 0x22 && content current 0x33
}
s_revert_memory() {
    local old=$DOMID
    xs snapshot-revert -n m1 "$G" || fail "rc=$RC: $(errline)" || return 1
    wait_qmp || fail "the domain is gone after the revert" || return 1
    running || fail "the domain is $(state) after the revert" || return 1
    DETAIL="domid $old -> $DOMID"
    content current 0x22 && content d1 0x11 && content m1 0x22
}
s_revert_disk_only() {
    run 120 xl destroy "$G" || fail "xl destroy: $(errline)" || return 1
    run 400 xlsnap --toolstack offline snapshot-revert -n d1 "$G" \
        || fail "offline revert rc=$RC: $(errline)" || return 1
    content current 0x11 || return 1
    content m1 0x22 || return 1
    start_guest
}
s_delete() {
    xs snapshot-delete -n d1 "$G" || fail "rc=$RC: $(errline)" || return 1
    ! has_tag d1 || fail "tag d1 still on $IMG" || return 1
    has_tag m1 || fail "tag m1 lost" || return 1
    running || fail "the domain is $(state)" || return 1
    content m1 0x22 && content current 0x11
}
# crash KILLPOINT: xlsnap snapshot-create killed (SIGKILL, XLSNAP_FAULT_INJECT) at
# KILLPOINT; the operation stays in flight (a change is refused with 3); `recover` finishes
# or undoes it; a second recover changes nothing; the domain runs; check agrees; content.
crash() {
    XLSNAP_FAULT_INJECT=$1 xs snapshot-create -n c1 "$G"
    [ "$RC" -eq 137 ] || fail "the injected kill did not happen (rc=$RC: $(errline))" || return 1
    say "after the kill at $1 the domain is $(state); tags: $(tags)"
    xs snapshot-list "$G"
    grep -q "in flight" "$ERR" || fail "snapshot-list does not warn of the operation in flight" || return 1
    xs snapshot-delete -n m1 "$G"
    [ "$RC" -eq 3 ] || fail "a change while in flight was not refused with 3 (rc=$RC: $(errline))" || return 1
    xs recover "$G" || fail "recover rc=$RC: $(errline)" || return 1
    local first
    first=$(cat "$OUT")
    xs recover "$G" || fail "second recover rc=$RC: $(errline)" || return 1
    DOMID=$(domid_of)
    running || fail "the domain is $(state) after recover" || return 1
    xs check "$G" || fail "check rc=$RC: $(tail -n 3 "$OUT" | tr '\n' ' ')" || return 1
    has_tag m1 || fail "tag m1 lost" || return 1
    DETAIL="recover said: $(echo "$first" | tail -n 1 | cut -c1-150); tags after: $(tags)"
    content m1 0x22 && content current 0x11 || return 1
    if has_tag c1; then  # recover finished it: c1 is a snapshot like any other
        content c1 0x11 || return 1
        xs snapshot-delete -n c1 "$G" || fail "delete of c1 after recover rc=$RC: $(errline)" || return 1
    fi
}
# Killed after `xl save -p` (step 1) and before the disk snapshot (step 2) is recorded.
s_crash_recover() { crash kill:2:intent; }
# Killed after the disk snapshot ran (step 2), before its outcome is recorded.
s_crash_recover_effect() { crash kill:2:effect; }
s_final_check() {
    run 120 xl destroy "$G" || fail "xl destroy: $(errline)" || return 1
    run 300 qemu-img check "$IMG" || fail "qemu-img check rc=$RC: $(grep -m1 -i -E 'error|leak' "$OUT")" || return 1
    xs check "$G"
    DETAIL="tags: $(tags)"
    content m1 0x22 && content current 0x11
}

guest() {  # guest NAME UUID: every scenario on that guest
    G=$1
    UUID=$2
    IMG="/var/lib/xen/images/$G.qcow2"
    DOMID=""
    phase "$G-begin"
    mem "$G-begin"
    scenario "$G-boot" s_boot
    if [ -z "$DOMID" ]; then
        report "XLSNAP-SCENARIO $G-rest FAIL 0s the guest did not start"
        return
    fi
    # Each scenario starts from a running guest, whatever the one before left.
    up; scenario "$G-create-disk-only" s_create_disk_only
    up; scenario "$G-create-memory" s_create_memory
    mem "$G-after-create"
    up; scenario "$G-list" s_list
    up; scenario "$G-list-long" s_list_long
    scenario "$G-content" s_content
    up; scenario "$G-revert-memory" s_revert_memory
    up; scenario "$G-revert-disk-only" s_revert_disk_only
    up; scenario "$G-delete" s_delete
    up; scenario "$G-crash-recover" s_crash_recover
    up; scenario "$G-crash-recover-effect" s_crash_recover_effect
    up; scenario "$G-final-check" s_final_check
    timeout 120 xl destroy "$G" >/dev/null 2>&1
    echo "XLSNAP-LOG $G's device model logs (tails):"
    tail -n 15 /var/log/xen/qemu-dm-"$G".log* 2>/dev/null | sed 's/^/  dm| /'
    mem "$G-end"
    phase "$G-end"
}

# ---- real xl, verbatim, for what the fake xl models ----------------------------------------
s_xl_transcript() {
    G=pv1
    IMG=/var/lib/xen/images/xlraw.qcow2
    sed -e 's/^name = .*/name = "xlraw"/' -e '/^uuid/d' -e "s|pv1.qcow2|xlraw.qcow2|" \
        /etc/xen/pv1.cfg >/tmp/xlraw.cfg
    G=xlraw
    make_disk || fail "cannot make $IMG" || return 1
    xlrec create /tmp/xlraw.cfg || fail "xl create" || return 1
    local id
    id=$(timeout 60 xl domid xlraw)
    xlrec list
    xlrec list xlraw
    xlrec domid xlraw
    xlrec domname "$id"
    xlrec pause xlraw
    xlrec list xlraw
    xlrec unpause xlraw
    xlrec unpause xlraw
    xlrec save -p xlraw /tmp/xlraw.save
    xlrec list xlraw
    xlrec restore -p /tmp/xlraw.save
    xlrec destroy xlraw
    xlrec restore -p /tmp/xlraw.save
    xlrec list xlraw
    xlrec unpause xlraw
    xlrec list -l xlraw
    xlrec save xlraw /tmp/xlraw2.save
    xlrec list xlraw
    xlrec restore /tmp/xlraw2.save
    xlrec list nosuch
    xlrec list -l nosuch
    xlrec domid nosuch
    xlrec domname 999
    xlrec pause nosuch
    xlrec unpause nosuch
    xlrec destroy nosuch
    xlrec save -p nosuch /tmp/nosuch.save
    xlrec restore /tmp/nosuch.save
    xlrec destroy xlraw
    xlrec list
    echo "XLSNAP-XL-TRANSCRIPT-END"
    rm -f /tmp/xlraw.save /tmp/xlraw2.save "$IMG"
}

# ---- main -----------------------------------------------------------------------------------
phase dom0-init
say "kernel $(uname -r), python $(python3 --version 2>&1), $(qemu-img --version | head -n 1)"
modprobe -a xen-evtchn xen-gntdev xen-gntalloc xen-privcmd 2>/dev/null || true
run 120 /etc/init.d/xen start
phase xen-services
if ! run 60 xl info; then
    report "XLSNAP-SCENARIO xen-host FAIL 0s xl info: $(errline)"
    exit 0
fi
grep -E '^(xen_version|xen_caps|total_memory|free_memory)' "$OUT" | sed 's/^/XLSNAP-LOG xl info: /'
report "XLSNAP-SCENARIO xen-host PASS 0s $(awk '/^xen_version/{print "xen " $3}' "$OUT")"
run 60 xlsnap --version || run 60 xlsnap --help
mem dom0
scenario xl-transcript s_xl_transcript
phase xl-transcript
guest pv1 6a1f3c2e-0b7d-4e5a-9c8f-1d2e3f4a5b01
guest hvm1 6a1f3c2e-0b7d-4e5a-9c8f-1d2e3f4a5b02
run 60 xlsnap history
phase end
exit 0
