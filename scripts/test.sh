#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the whole test suite, slow tests included.
# Arguments go to pytest:  scripts/test.sh -x -k revert   |   scripts/test.sh -m 'not slow'
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -q "$@"
