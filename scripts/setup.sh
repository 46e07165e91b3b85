#!/usr/bin/env bash
# Idempotent set-up of a Debian machine for xlsnap: qemu-utils (qemu-img, qemu-io) and a
# virtual environment .venv in the repo root with `pip install -e '.[test]'`.
#
#   bash scripts/setup.sh        # run it (root, or a user with sudo)
#   source scripts/setup.sh      # only define the helpers below (used by .ci/run)
#
# Reaches nothing but Debian's packages and PyPI. Safe to run again: it installs only what
# is missing, and re-runs pip only when pyproject.toml changed since the last set-up.
set -euo pipefail

XLSNAP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XLSNAP_VENV="$XLSNAP_ROOT/.venv"

xlsnap_say() { printf 'setup: %s\n' "$*"; }

# Run a command as root: directly when we are root, else through sudo.
xlsnap_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup: need root or sudo to run: $*" >&2
        return 1
    fi
}

# xlsnap_apt_install PKG...: apt-get install, with one `apt-get update` per process tree.
xlsnap_apt_install() {
    if [ -z "${XLSNAP_APT_UPDATED:-}" ]; then
        xlsnap_say "apt-get update"
        xlsnap_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        export XLSNAP_APT_UPDATED=1
    fi
    xlsnap_say "apt-get install $*"
    xlsnap_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# xlsnap_need COMMAND:PACKAGE...: install the packages whose command is missing, in one go.
xlsnap_need() {
    local pair missing=()
    for pair in "$@"; do
        if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
            missing+=("${pair#*:}")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        # shellcheck disable=SC2046  # package names never contain spaces
        xlsnap_apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
    fi
}

# xlsnap_need_pkg PACKAGE...: install the packages that dpkg does not have (for libraries,
# which have no command to look for).
xlsnap_need_pkg() {
    local pkg missing=()
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        xlsnap_apt_install "${missing[@]}"
    fi
}

xlsnap_make_venv() {
    local python=${PYTHON:-python3}
    command -v "$python" >/dev/null 2>&1 || xlsnap_need python3:python3
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "setup: xlsnap needs Python 3.11 or newer; $python is $("$python" -V 2>&1)" >&2
        return 1
    fi
    if [ -x "$XLSNAP_VENV/bin/python" ] && "$XLSNAP_VENV/bin/python" -c 'import pip' 2>/dev/null; then
        return 0
    fi
    # Debian's python3 has the venv module but not ensurepip without python3-venv.
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        xlsnap_apt_install python3-venv
    fi
    xlsnap_say "creating $XLSNAP_VENV"
    rm -rf "$XLSNAP_VENV"
    "$python" -m venv "$XLSNAP_VENV"
}

xlsnap_pip_install() {
    local stamp="$XLSNAP_VENV/.xlsnap-setup" want
    want=$(sha256sum "$XLSNAP_ROOT/pyproject.toml" | cut -d' ' -f1)
    # The import check runs outside the repo so that it sees the installed packages only.
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$XLSNAP_VENV/bin/xlsnap" ] \
        && (cd / && "$XLSNAP_VENV/bin/python" -c 'import commands, pytest, hypothesis') 2>/dev/null; then
        xlsnap_say "python packages up to date"
        return 0
    fi
    xlsnap_say "pip install -e '.[test]'"
    # -qq: errors only (this machine's pip config names index folders that may not exist)
    (cd "$XLSNAP_ROOT" && "$XLSNAP_VENV/bin/python" -m pip install -qq -e '.[test]')
    # pip's xlsnap script loads site (and the editable finder: ~10 ms); this one starts
    # Python with -IS, and the client execs the whole CLI only without a service.
    (cd "$XLSNAP_ROOT" && "$XLSNAP_VENV/bin/python" -m commands.service.client \
        --launcher "$XLSNAP_VENV/bin/xlsnap")
    echo "$want" >"$stamp"
}

xlsnap_setup() {
    xlsnap_need qemu-img:qemu-utils qemu-io:qemu-utils
    xlsnap_make_venv
    xlsnap_pip_install
    xlsnap_say "ready: $("$XLSNAP_VENV/bin/python" -V), $(qemu-img --version | head -n 1)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    xlsnap_setup
fi
