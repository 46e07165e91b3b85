"""The xl.cfg file syntax (libxlu's grammar), parsed as data: never eval'd.

Statements are ``KEY = VALUE`` or ``KEY += VALUE``, ended by a newline or ``;``.
A VALUE is a quoted string (C-like escapes), a number, or a ``[ ... ]`` list of
those; ``#`` starts a comment. Every setting remembers the source spans of its
items so that callers can rewrite one item in place (see ``replace_spans``).
"""

from __future__ import annotations

import bisect
import os
import re
from typing import NamedTuple

from commands.errors import ConfigError
from commands.safe_read import read_small_file

Scalar = str | int | float
Value = Scalar | tuple[Scalar, ...]
Span = tuple[int, int]

_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT_REST = _IDENT_START | frozenset("0123456789.")
_NUMBER_CHARS = _IDENT_REST  # a number token runs as far as an identifier would
_SPACE = frozenset(" \t\r\f\v")
_DIGITS = frozenset("0123456789")
_INT_RE = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_HEX_RE = re.compile(r"0[xX][0-9a-fA-F]+\Z")
_DECIMAL_RE = re.compile(r"(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_SIMPLE_ESCAPES = {
    '"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b",
    "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}
_QUOTE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_MESSAGE_LIMIT = 160
_MAX_NUMBER_LEN = 64


def quoted(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``repr`` of text for a one-line message, shortened past ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


class Setting(NamedTuple):
    """One key's final value, the line of its last statement and its items' spans."""

    key: str
    value: Value
    line: int
    items: tuple[Span, ...]


class XlConfig(NamedTuple):
    """A parsed xl.cfg file: its settings plus the source, for messages and rewrites."""

    path: str
    text: str
    settings: dict[str, Setting]

    def line_of(self, offset: int) -> int:
        """The 1-based line number holding source offset ``offset``."""
        return self.text.count("\n", 0, max(0, offset)) + 1

    def error(self, line: int, problem: str) -> ConfigError:
        """A ConfigError naming the file and line and quoting that line."""
        return _error(self.path, self.text, line, problem)

    def get_str(self, key: str, default: str | None = None) -> str | None:
        """The string value of ``key``, or ``default`` when it is not set."""
        setting = self.settings.get(key)
        if setting is None:
            return default
        if not isinstance(setting.value, str):
            raise self.error(setting.line, f"{key!r} must be a string")
        return setting.value

    def get_list(self, key: str) -> tuple[str, ...]:
        """The strings of list ``key``; a single string is a one-item list; unset is ()."""
        setting = self.settings.get(key)
        if setting is None:
            return ()
        if isinstance(setting.value, str):
            return (setting.value,)
        if not isinstance(setting.value, tuple):
            raise self.error(setting.line, f"{key!r} must be a list of strings")
        for item, (start, _end) in zip(setting.value, setting.items):
            if not isinstance(item, str):
                raise self.error(self.line_of(start), f"items of {key!r} must be strings")
        return tuple(str(item) for item in setting.value)


def _line_text(text: str, line: int) -> str:
    """The text of 1-based line ``line`` (without its newline)."""
    lines = text.split("\n")
    if 1 <= line <= len(lines):
        return lines[line - 1].rstrip()
    return ""


def _error(path: str, text: str, line: int, problem: str) -> ConfigError:
    """``PATH:LINE: problem: 'the line'`` as a ConfigError."""
    return ConfigError(f"{path}:{line}: {problem}: {quoted(_line_text(text, line))}")


class _Token(NamedTuple):
    kind: str  # ident, string, number, op ('=', '+=', '[', ']', ',', ';'), newline, eof
    start: int
    end: int
    value: Scalar = ""


class _Parser:
    """A hand-written scanner and recursive-descent parser for one text."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 1 if text.startswith("\ufeff") else 0
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def fail(self, offset: int, problem: str) -> ConfigError:
        return _error(self.path, self.text, self.line_of(offset), problem)

    # -- scanner -----------------------------------------------------------
    def next(self) -> _Token:
        return self._scan()

    def _scan(self) -> _Token:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in _SPACE:
                self.pos += 1
            elif ch == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            else:
                break
        start = self.pos
        if start >= n:
            return _Token("eof", n, n)
        ch = text[start]
        if ch == "\n":
            self.pos += 1
            return _Token("newline", start, start + 1)
        if ch == "+" and text.startswith("+=", start):
            self.pos += 2
            return _Token("op", start, start + 2, "+=")
        if ch in "=[],;":
            self.pos += 1
            return _Token("op", start, start + 1, ch)
        if ch in "\"'":
            return self._string(start)
        if ch in _DIGITS:
            return self._number(start)
        if ch in _IDENT_START:
            end = start + 1
            while end < n and text[end] in _IDENT_REST:
                end += 1
            self.pos = end
            return _Token("ident", start, end, text[start:end])
        raise self.fail(start, f"unexpected character {ch!r}")

    def _number(self, start: int) -> _Token:
        text, end = self.text, start
        while end < len(text) and text[end] in _NUMBER_CHARS:
            end += 1
        self.pos = end
        word = text[start:end]
        value: Scalar
        if len(word) > _MAX_NUMBER_LEN:
            raise self.fail(start, f"number {quoted(word, 24)} is too long")
        if _INT_RE.match(word):
            value = int(word)
        elif _HEX_RE.match(word):
            value = int(word, 16)
        elif _DECIMAL_RE.match(word):
            value = float(word)
        elif re.match(r"0[0-9]+\Z", word):
            raise self.fail(start, f"ambiguous number {word!r} (xl reads a leading 0 as octal)")
        else:
            raise self.fail(start, f"bad number {word!r}")
        return _Token("number", start, end, value)

    def _string(self, start: int) -> _Token:
        text, n, quote = self.text, len(self.text), self.text[start]
        out: list[str] = []
        i = start + 1
        while True:
            if i >= n or text[i] == "\n":
                raise self.fail(start, "unterminated string")
            ch = text[i]
            if ch == quote:
                self.pos = i + 1
                return _Token("string", start, i + 1, "".join(out))
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            if i + 1 >= n or text[i + 1] == "\n":
                raise self.fail(start, "unterminated string")
            esc = text[i + 1]
            if esc in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[esc])
                i += 2
            elif esc == "x":
                digits = text[i + 2:i + 4]
                if len(digits) != 2 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise self.fail(i, "\\x needs two hex digits in string")
                out.append(chr(int(digits, 16)))
                i += 4
            elif esc in "01234567":
                j = i + 1
                while j < i + 4 and j < n and text[j] in "01234567":
                    j += 1
                code = int(text[i + 1:j], 8)
                if code > 0o377:
                    raise self.fail(i, f"octal escape {text[i:j]!r} is out of range in string")
                out.append(chr(code))
                i = j
            else:
                raise self.fail(i, f"invalid escape {text[i:i + 2]!r} in string")

    # -- grammar -----------------------------------------------------------
    def parse(self) -> dict[str, Setting]:
        settings: dict[str, Setting] = {}
        while True:
            token = self.next()
            if token.kind == "eof":
                return settings
            if token.kind == "newline" or (token.kind == "op" and token.value == ";"):
                continue
            if token.kind != "ident":
                raise self.fail(token.start,
                                f"expected a setting name, found {self._describe(token)}")
            key = str(token.value)
            op = self.next()
            if op.kind != "op" or op.value not in ("=", "+="):
                raise self.fail(op.start, f"expected '=' after {key!r}, found {self._describe(op)}")
            value, items = self._value(key)
            end = self.next()
            if end.kind not in ("newline", "eof") and not (end.kind == "op" and end.value == ";"):
                raise self.fail(end.start, f"expected end of statement after the value of {key!r}, "
                                           f"found {self._describe(end)}")
            line = self.line_of(token.start)
            old = settings.get(key)
            if op.value == "+=" and old is not None:
                value, items = self._add(old, value, items, token.start)
            settings[key] = Setting(key, value, line, items)

    def _add(self, old: Setting, value: Value, items: tuple[Span, ...],
             at: int) -> tuple[Value, tuple[Span, ...]]:
        """``old += value``: strings concatenate, lists extend; nothing else adds."""
        if isinstance(old.value, tuple) and isinstance(value, tuple):
            return old.value + value, old.items + items
        if isinstance(old.value, str) and isinstance(value, str):
            return old.value + value, old.items + items
        if isinstance(old.value, (int, float)) or isinstance(value, (int, float)):
            raise self.fail(at, f"cannot use += with numbers for {old.key!r}")
        raise self.fail(at, f"cannot add a list to a string or a string to a list for {old.key!r}")

    def _value(self, key: str) -> tuple[Value, tuple[Span, ...]]:
        token = self.next()
        if token.kind in ("string", "number"):
            return token.value, ((token.start, token.end),)
        if token.kind == "op" and token.value == "[":
            return self._list(token)
        if token.kind in ("newline", "eof") or (token.kind == "op" and token.value == ";"):
            raise self.fail(token.start, f"missing value for {key!r}")
        raise self.fail(token.start, f"expected a value for {key!r}, found {self._describe(token)}")

    def _list(self, opener: _Token) -> tuple[Value, tuple[Span, ...]]:
        values: list[Scalar] = []
        spans: list[Span] = []
        expect_item = True
        while True:
            token = self.next()
            if token.kind == "newline":
                continue
            if token.kind == "eof":
                raise self.fail(opener.start, "unterminated list (no closing ']')")
            if token.kind == "op" and token.value == "]":
                return tuple(values), tuple(spans)
            if expect_item:
                if token.kind in ("string", "number"):
                    values.append(token.value)
                    spans.append((token.start, token.end))
                    expect_item = False
                    continue
                if token.kind == "op" and token.value == "[":
                    raise self.fail(token.start, "nested lists are not supported")
                raise self.fail(token.start, f"expected a list item, found {self._describe(token)}")
            if token.kind == "op" and token.value == ",":
                expect_item = True
                continue
            raise self.fail(token.start,
                            f"expected ',' or ']' in list, found {self._describe(token)}")

    @staticmethod
    def _describe(token: _Token) -> str:
        if token.kind == "eof":
            return "end of file"
        if token.kind == "newline":
            return "end of line"
        if token.kind == "op":
            return repr(token.value)
        return f"{token.kind} {token.value!r}"


def parse_xl_cfg(text: str, path: str = "<config>") -> XlConfig:
    """Parse xl.cfg ``text``; ``path`` names it in messages. Raises ConfigError."""
    return XlConfig(path=path, text=text, settings=_Parser(text, path).parse())


def load_xl_cfg(path: str | os.PathLike[str]) -> XlConfig:
    """Read and parse the UTF-8 xl.cfg file at ``path``. Raises ConfigError."""
    name = os.fsdecode(path)
    data = read_small_file(path)  # a regular file, bounded (commands.safe_read)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text "
                          f"(byte 0x{data[exc.start]:02x})") from None
    return parse_xl_cfg(text, name)


def quote_string(value: str, quote: str = '"') -> str:
    """A string literal that ``parse_xl_cfg`` reads back as ``value``."""
    if quote not in ('"', "'"):
        raise ValueError(f"quote must be ' or \", not {quote!r}")
    out = [quote]
    for ch in value:
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)


def replace_spans(text: str, replacements: dict[Span, str]) -> str:
    """``text`` with each (start, end) span replaced; spans must not overlap."""
    out: list[str] = []
    pos = 0
    for (start, end), new in sorted(replacements.items()):
        if not 0 <= start <= end <= len(text):
            raise ValueError(f"span ({start}, {end}) is outside the text")
        if start < pos:
            raise ValueError(f"span ({start}, {end}) overlaps another span")
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)
