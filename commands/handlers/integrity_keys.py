"""Files of the integrity commands: the seal key and its public key, head files, proofs.

The key lives at ``<home>/seal.key`` (0600) unless ``--key`` says otherwise; the first
seal creates it, and no command ever replaces an existing one. Its public key is
kept beside it as ``seal.pub`` (PEM) for verifiers; a copy of it, and of the heads,
belongs off this host: whoever can write the ledger here can also rewrite a key here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from commands.errors import UsageError, VerificationFailed
from commands.state.atomic_files import atomic_write
from ledger.signing import (
    SealKeyError, create_key_file, load_key_file, parse_public_key, public_bytes, public_pem,
)
from ledger.tree_heads import HeadFormatError, TreeHead, loads_head


def public_key_path(key_path: Path) -> Path:
    return key_path.with_suffix(".pub")


def seal_key(key_path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The signing key, created if there is none yet; ``(key, created)``."""
    try:
        if key_path.exists() or key_path.is_symlink():
            key, created = load_key_file(key_path), False
        else:
            key, created = create_key_file(key_path), True
    except SealKeyError as exc:
        raise UsageError(str(exc)) from None
    pub_path = public_key_path(key_path)
    pem = public_pem(public_bytes(key))
    if pub_path.exists():
        if read_public_key(pub_path) != public_bytes(key):
            raise VerificationFailed(f"{pub_path} is not the public key of {key_path}: one of them "
                                "was replaced")
    else:
        atomic_write(pub_path, pem, mode=0o644)
    return key, created


def local_public_key(key_path: Path) -> tuple[str, bytes] | None:
    """The public half of the local signing key, if there is one this user can read."""
    try:
        return str(key_path), public_bytes(load_key_file(key_path))
    except SealKeyError:
        pub_path = public_key_path(key_path)
        if key_path.exists() and pub_path.exists():
            return str(pub_path), read_public_key(pub_path)
        return None


def read_public_key(path: Path | str) -> bytes:
    try:
        return parse_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read public key {path}: {exc.strerror}") from None
    except SealKeyError as exc:
        raise UsageError(f"{path}: {exc}") from None


def read_head(path: str) -> TreeHead:
    """A tree head file (as ``xlsnap seal --out`` writes it)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        return loads_head(text)
    except OSError as exc:
        raise UsageError(f"cannot read head file {path}: {exc.strerror}") from None
    except (HeadFormatError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None


def read_json(path: str, what: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        return json.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a {what} (not JSON: {exc})") from None


def write_output(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to a file (atomically) or to stdout for ``-``."""
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a folder")
    try:
        atomic_write(target.absolute(), text.encode(), mode=mode)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
