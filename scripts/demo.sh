#!/usr/bin/env bash
# Set up (scripts/setup.sh), then walk through every xlsnap command on scratch qcow2 disks.
# Arguments go to scripts/demo.py:  scripts/demo.sh --keep   keeps the scratch folder.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/python" "$root/scripts/demo.py" "$@"
