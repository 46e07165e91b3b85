"""xl.cfg's literals as libxlu reads and writes them: quoted strings and C numbers."""

from __future__ import annotations

import re

# libxlu_cfg.c xlu__cfgl_dequote (lines 598-668): the escapes a quoted string may use.
_SIMPLE_ESCAPES = {
    '"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b",
    "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale, as strtol/strtoul skip it
_QUOTE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a",
                  "\b": "\\b", "\f": "\\f", "\v": "\\v"}
_LONG_MIN, _LONG_MAX = -2**63, 2**63 - 1  # xl's long on the 64-bit hosts Xen runs on


def strtol(text: str) -> int | None:
    """C ``strtol(text, &end, 0)`` of a whole string; None where xl reports an error.

    Leading C white space and a sign are allowed, ``0x`` means hex and a leading ``0``
    octal; trailing characters, no digits or a value outside ``long`` are errors.
    """
    body = text.lstrip(_C_SPACE)
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", body):
        digits, base = body[2:], 16
    elif re.fullmatch(r"0[0-7]*", body):
        digits, base = body, 8
    elif re.fullmatch(r"[1-9][0-9]*", body):
        digits, base = body, 10
    else:
        return None
    digits = digits.lstrip("0") or "0"
    if len(digits) > 64:  # far beyond a long in any base: ERANGE
        return None
    value = int(digits, base)
    value *= sign
    return value if _LONG_MIN <= value <= _LONG_MAX else None


def dequote(literal: str) -> str:
    """The value of a quoted string token, as libxlu_cfg.c xlu__cfgl_dequote makes it.

    Raises ValueError for the escapes libxlu refuses. libxlu's numeric escapes do not
    work as in C: ``\\x`` is always refused (it skips a digit, then wants more than the
    two it reads), and ``\\NNN`` (first digit 0-7) checks that at least two characters
    after the first digit read as a base-10 number and then drops them all, writing no
    character; xl users get exactly that, so this does the same.
    """
    out: list[str] = []
    i, end = 1, len(literal) - 1
    while i < end:
        ch = literal[i]
        i += 1
        if ch != "\\":
            out.append(ch)
            continue
        esc = literal[i]
        i += 1
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
        elif esc == "x":
            raise ValueError("libxlu refuses every \\x escape")
        elif esc in "01234567":
            numbuf = literal[i:i + 3]  # strncpy(numbuf, p, 3): may take the closing quote
            match = re.match(r"[ \t\n\v\f\r]*[+-]?[0-9]+", numbuf)
            if match is None or match.end() < 2:
                raise ValueError(f"bad octal escape {literal[i - 2:i + 3]!r}")
            i += match.end()
        else:
            raise ValueError(f"invalid escape {literal[i - 2:i]!r}")
    return "".join(out)


def quote_string(value: str, quote: str = '"') -> str:
    """A string literal that libxlu (and ``parse_xl_cfg``) reads back as ``value``.

    Only the escapes libxlu decodes as C does are written (``\\\\``, the quote and
    ``\\n \\t \\r \\a \\b \\f \\v``); other characters go in as they are, which the
    lexer allows. libxlu's ``\\x`` and octal escapes never are (see ``dequote``).
    """
    if quote not in ('"', "'"):
        raise ValueError(f"quote must be ' or \", not {quote!r}")
    if "\x00" in value:
        raise ValueError("an xl.cfg string cannot hold a NUL character")
    out = [quote]
    for ch in value:
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)
