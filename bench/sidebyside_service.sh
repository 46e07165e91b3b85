#!/usr/bin/env bash
# xlsnap through xlsnapd against libvirt 9.0 (virsh): the peer's sidebyside.sh, with its
# xlsnap calls made by this checkout's client to a service started from this checkout.
# Usage (root; run the peer's setup.sh first):
#   PEER=/work/shared/peers/libvirt RUNS=5 LIST_N="100" bash bench/sidebyside_service.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer=${PEER:-/work/shared/peers/libvirt}
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=$(command -v python3)
work=$(mktemp -d /tmp/xlsnap-sbs-svc.XXXXXX)
export XLSNAP_SOCKET=$work/xlsnap.sock
(cd "$repo" && exec "$python" -m commands.service --foreground --socket "$XLSNAP_SOCKET" \
    --policy "$work/policy.toml") 2>"$work/xlsnapd.log" &
service=$!
trap 'kill "$service" 2>/dev/null; wait "$service" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do [[ -S $XLSNAP_SOCKET ]] && break; sleep 0.05; done
[[ -S $XLSNAP_SOCKET ]] || { cat "$work/xlsnapd.log" >&2; exit 1; }
# The client of this checkout, as scripts/setup.sh installs it: Python -IS, no site.
(cd "$repo" && "$python" -m commands.service.client --launcher "$work/xlsnap")
XLSNAP=$work/xlsnap bash "$peer/sidebyside.sh"
