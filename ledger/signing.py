"""Ed25519 keys that sign tree heads: the private key file, the public key, signatures.

The private key file is PKCS#8 PEM, mode 0600, created once with O_EXCL and never
overwritten; a file readable by group or others is refused, as ssh refuses one.
Public keys travel as PEM (``openssl pkey -pubin`` reads it) or as 64 hex digits;
a key is named by its id, the hex SHA-256 of its 32 raw bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import LedgerError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class SealKeyError(LedgerError):
    """A key file is missing, unsafe or not an Ed25519 key."""


def key_id(public_key: bytes) -> str:
    """The hex SHA-256 of a raw public key: how heads and messages name a key."""
    return hashlib.sha256(public_key).hexdigest()


def public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key's public half."""
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def create_key_file(path: Path) -> Ed25519PrivateKey:
    """Generate a key and write it to ``path`` (0600); refuses to replace any file."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise SealKeyError(f"{path} exists already; it is not replaced") from None
    except OSError as exc:
        raise SealKeyError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_key_file(path: Path) -> Ed25519PrivateKey:
    """Read a private key file; refuses links, files others can read, and other key types."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise SealKeyError(f"no key file {path}") from None
    except OSError as exc:
        raise SealKeyError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SealKeyError(f"{path} is not a regular file")
        if mode & 0o077:
            raise SealKeyError(f"key file {path} is readable by others (mode "
                            f"{stat.S_IMODE(mode):04o}); run 'chmod 600 {path}'")
        data = handle.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SealKeyError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SealKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_pem(public_key: bytes) -> bytes:
    """A raw public key as PEM SubjectPublicKeyInfo."""
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_public_key(data: bytes | str) -> bytes:
    """Raw public key bytes from PEM or 64 hex digits; ``SealKeyError`` otherwise."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    text = text.strip()
    if "BEGIN PUBLIC KEY" in text:
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise SealKeyError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SealKeyError(f"a {type(key).__name__} public key, not Ed25519")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise SealKeyError("a public key is PEM or 64 hex digits") from None
    if len(raw) != PUBLIC_KEY_SIZE:
        raise SealKeyError(f"a public key has {PUBLIC_KEY_SIZE} bytes, not {len(raw)}")
    return raw


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def signature_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Does ``signature`` sign ``message`` under ``public_key``? Never raises."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
