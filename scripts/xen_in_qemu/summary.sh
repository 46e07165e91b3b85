#!/usr/bin/env bash
# Print a real-Xen tier serial log's outcome: the phases, then each scenario's line once
# (the last one seen: scenarios.sh repeats them all, whole, just before XLSNAP-DONE), then
# XLSNAP-DONE when the run finished.   scripts/xen_in_qemu/summary.sh SERIAL_LOG
set -euo pipefail
log=$1
tr -d '\r' <"$log" | grep -a -E '^XLSNAP-(PHASE|MEM) ' || true
tr -d '\r' <"$log" | grep -a -E '^XLSNAP-SCENARIO ' | awk '
    { if (!($2 in last)) order[++n] = $2; last[$2] = $0 }
    END { for (i = 1; i <= n; i++) print last[order[i]] }' || true
tr -d '\r' <"$log" | grep -a -m 1 -E '^XLSNAP-DONE' || echo "XLSNAP-DONE missing: the run did not finish"
