"""The xl.cfg file syntax, parsed as data (never eval'd) exactly as Xen 4.17's libxlu does."""

from __future__ import annotations

import bisect
import functools
import os
import re
from typing import NamedTuple

from commands.errors import ConfigError
from commands.config.safe_read import read_small_file
from commands.config.xlcfg_literals import dequote, strtol

Scalar = str
Value = str | tuple["Value", ...]
Span = tuple[int, int]

# libxlu_cfg_l.l lines 55-80: the tokens, by their first character.
_IDENT_RE = re.compile(r"[a-z][._0-9a-z]*")
_NUMBER_RE = re.compile(r"[0-9][0-9a-fx]*")
_STRING_RE = {'"': re.compile(r'"(?:[^"\\\n]|\\[^\n])*"'),
              "'": re.compile(r"'(?:[^'\\\n]|\\[^\n])*'")}
_COMMENT_RE = re.compile(r"#[^\n]*\n")
_BLANK = frozenset(" \t")
_MESSAGE_LIMIT = 160


def quoted(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``repr`` of text for a one-line message, shortened past ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


@functools.lru_cache(maxsize=4)
def _newlines(text: str) -> list[int]:
    """Offsets of every newline in ``text`` (a str caches its hash: lookups are cheap)."""
    return [m.start() for m in re.finditer("\n", text)]


class Setting(NamedTuple):
    """One key's final value, the line of its last statement, its items' spans and op.

    ``op`` is ``=`` or ``+=`` (of the last statement): xl reads no number from a
    setting made with ``+=`` (libxlu_cfg.c xlu_cfg_get_bounded_long).
    """

    key: str
    value: Value
    line: int
    items: tuple[Span, ...]
    op: str = "="


class XlConfig(NamedTuple):
    """A parsed xl.cfg file: its settings plus the source, for messages and rewrites."""

    path: str
    text: str
    settings: dict[str, Setting]

    def line_of(self, offset: int) -> int:
        """The 1-based line number holding source offset ``offset`` (a bisect, not a scan)."""
        return bisect.bisect_left(_newlines(self.text), max(0, offset)) + 1

    def error(self, line: int, problem: str) -> ConfigError:
        """A ConfigError naming the file and line and quoting that line."""
        return _error(self.path, self.text, line, problem)

    def get_str(self, key: str, default: str | None = None) -> str | None:
        """The string value of ``key`` (a number is its text), or ``default`` if unset."""
        setting = self.settings.get(key)
        if setting is None:
            return default
        if not isinstance(setting.value, str):
            raise self.error(setting.line, f"{key!r} is a list but must be a single value")
        return setting.value

    def get_long(self, key: str) -> int | None:
        """``key`` as xlu_cfg_get_long reads it (strtol base 0), or None when unset."""
        setting = self.settings.get(key)
        if setting is None:
            return None
        text = self.get_str(key)
        assert text is not None
        if setting.op == "+=":
            raise self.error(setting.line, f"{key!r} is set with '+=': xl reads no number "
                                           "from it")
        value = strtol(text)
        if value is None:
            raise self.error(setting.line, f"{key!r} is not a valid number: {quoted(text)}")
        return value

    def get_list(self, key: str) -> tuple[str, ...]:
        """The strings of list ``key`` as xl reads them; unset is ().

        A single string is no list: xl's ``xlu_cfg_get_list`` refuses it and reads no
        item (``disk = "..."`` attaches no disk), so it is an error here. xl also stops
        at the first item that is itself a list (xl_parse.c reads items until
        ``xlu_cfg_get_listitem`` returns NULL), so a nested list is an error too.
        """
        setting = self.settings.get(key)
        if setting is None:
            return ()
        if isinstance(setting.value, str):
            raise self.error(setting.line,
                             f"{key!r} is a single string, not a list: xl reads no item "
                             f"from it (write {key} = [ ... ])")
        for index, (item, (start, _end)) in enumerate(zip(setting.value, setting.items)):
            if not isinstance(item, str):
                raise self.error(self.line_of(start),
                                 f"item {index + 1} of {key!r} is a list: xl stops reading "
                                 f"{key!r} there and ignores the items from it on")
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
    value: str = ""


class _Parser:
    """libxlu's scanner and grammar for one text: any lexical or syntax error refuses."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.peeked: _Token | None = None

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def fail(self, offset: int, problem: str) -> ConfigError:
        return _error(self.path, self.text, self.line_of(offset), problem)

    # -- scanner (libxlu_cfg_l.l) -------------------------------------------
    def next(self) -> _Token:
        if self.peeked is not None:
            token, self.peeked = self.peeked, None
            return token
        return self._scan()

    def peek(self) -> _Token:
        if self.peeked is None:
            self.peeked = self._scan()
        return self.peeked

    def _scan(self) -> _Token:
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos] in _BLANK:
            self.pos += 1
        start = self.pos
        if start >= n:
            return _Token("eof", n, n)
        ch = text[start]
        match: re.Match[str] | None = None
        if ch == "\n":
            self.pos += 1
            return _Token("newline", start, start + 1)
        if ch == "#":
            match = _COMMENT_RE.match(text, start)
            if match is None:
                return self._lexical_error(start, "comment at the end of the file without a "
                                                  "newline (xl's lexer needs one)")
            self.pos = match.end()
            return _Token("newline", start, match.end())
        if text.startswith("+=", start):
            self.pos += 2
            return _Token("op", start, start + 2, "+=")
        if ch in "=[],;":
            self.pos += 1
            return _Token("op", start, start + 1, ch)
        if ch in _STRING_RE:
            return self._string(start)
        for kind, regex in (("number", _NUMBER_RE), ("ident", _IDENT_RE)):
            match = regex.match(text, start)
            if match:
                self.pos = match.end()
                return _Token(kind, start, match.end(), match.group())
        return self._lexical_error(start, self._lexical(ch))

    def _lexical_error(self, start: int, problem: str) -> _Token:
        """libxlu's ``.`` rule: an error, unless it is the text's last character.

        The rule enters the ``lexerr`` state, whose rules report the error when they
        match what follows; at the end of the input nothing follows and flex stops
        without a report, so xl ignores one stray last byte (``a = 1 #``); a non-ASCII
        character is several bytes in UTF-8, and the rest of it is reported.
        """
        if start == len(self.text) - 1 and self.text[start].isascii():
            self.pos = len(self.text)
            return _Token("eof", self.pos, self.pos)
        raise self.fail(start, problem)

    @staticmethod
    def _lexical(ch: str) -> str:
        if ch == "\r":
            return "carriage return (xl's lexer refuses DOS line ends)"
        if ch == "\ufeff":
            return "byte-order mark (xl's lexer refuses it)"
        if ch.isupper() or ch == "_":
            return f"unexpected character {ch!r} (xl's names are [a-z][._0-9a-z]*)"
        if ch == ".":
            return "unexpected '.' (xl has no decimal numbers; quote the value)"
        return f"unexpected character {ch!r}"

    def _string(self, start: int) -> _Token:
        match = _STRING_RE[self.text[start]].match(self.text, start)
        if match is None:
            return self._lexical_error(start, "unterminated string (a string ends on its line)")
        if "\x00" in match.group():
            raise self.fail(start, "NUL character in string")
        try:
            value = dequote(match.group())
        except ValueError as why:
            raise self.fail(start, f"{why} in string") from None
        self.pos = match.end()
        return _Token("string", start, match.end(), value)

    # -- grammar (libxlu_cfg_y.y) -------------------------------------------
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
            key = token.value
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
            settings[key] = Setting(key, value, line, items, op.value)

    def _add(self, old: Setting, value: Value, items: tuple[Span, ...],
             at: int) -> tuple[Value, tuple[Span, ...]]:
        """``old += value``: strings concatenate, lists extend (xlu__cfg_concat_vals)."""
        if isinstance(old.value, tuple) and isinstance(value, tuple):
            return old.value + value, old.items + items
        if isinstance(old.value, str) and isinstance(value, str):
            return old.value + value, old.items + items
        raise self.fail(at, f"cannot add a list to a string or a string to a list for {old.key!r}")

    def _value(self, key: str) -> tuple[Value, tuple[Span, ...]]:
        token = self.next()
        if token.kind in ("string", "number"):
            return token.value, ((token.start, token.end),)
        if token.kind == "op" and token.value == "[":
            value, spans, _end = self._list(token)
            return value, spans
        if token.kind in ("newline", "eof") or (token.kind == "op" and token.value == ";"):
            raise self.fail(token.start, f"missing value for {key!r}")
        raise self.fail(token.start, f"expected a value for {key!r}, found {self._describe(token)}")

    def _list(self, opener: _Token) -> tuple[tuple[Value, ...], tuple[Span, ...], int]:
        """``'[' nlok valuelist ']'``: the items, their spans and the offset after ']'."""
        values: list[Value] = []
        spans: list[Span] = []
        expect_item = True
        while True:
            token = self.next()
            if token.kind == "newline":
                continue
            if token.kind == "eof":
                raise self.fail(opener.start, "unterminated list (no closing ']')")
            if token.kind == "op" and token.value == "]":
                return tuple(values), tuple(spans), token.end
            if expect_item:
                if token.kind in ("string", "number"):
                    values.append(token.value)
                    spans.append((token.start, token.end))
                    expect_item = False
                    continue
                if token.kind == "op" and token.value == "[":
                    inner, _spans, end = self._list(token)
                    values.append(inner)
                    spans.append((token.start, end))
                    expect_item = False
                    continue
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
    """Parse xl.cfg ``text``; ``path`` names it in messages. Raises ConfigError.

    The grammar is libxlu's (``tools/libs/util/libxlu_cfg_l.l`` and ``libxlu_cfg_y.y``):
    statements ``key = value`` or ``key += value`` end at a newline or ``;`` (the last may
    end at the end of the file); keys are ``[a-z][._0-9a-z]*``; a value is a string, a
    number or a ``[ ... ]`` list of values (lists nest, a trailing comma is allowed and
    newlines may follow ``[``, ``,`` and items). Numbers are kept as their text, as xl
    keeps them: ``name = 1397207577`` is the string "1397207577", and ``get_long`` reads
    numbers the way ``xlu_cfg_get_long`` does (``strtol`` base 0: ``0777`` is octal).
    Whitespace is blank and tab only; ``#`` comments run to a newline, which they need;
    anything else (``\r``, a byte-order mark, ``1.5``, uppercase) is refused, as xl
    refuses it. Every setting remembers the source spans of its items so that callers can
    rewrite one item in place (see ``replace_spans``); ``quote_string`` writes strings that
    libxlu reads back unchanged.
    """
    return XlConfig(path=path, text=text, settings=_Parser(text, path).parse())


def load_xl_cfg(path: str | os.PathLike[str]) -> XlConfig:
    """Read and parse the UTF-8 xl.cfg file at ``path``. Raises ConfigError."""
    name = os.fsdecode(path)
    data = read_small_file(path)  # a regular file, bounded (commands.config.safe_read)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text "
                          f"(byte 0x{data[exc.start]:02x})") from None
    return parse_xl_cfg(text, name)


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
