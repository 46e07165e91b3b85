"""Tests for the xl.cfg syntax parser (commands.config.xlcfg)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.config.xlcfg import (
    Setting,
    XlConfig,
    load_xl_cfg,
    parse_xl_cfg,
    replace_spans,
)
from commands.config.xlcfg_literals import quote_string
from commands.errors import ConfigError, UsageError

WEB_CFG = """\
# /etc/xen/web.cfg: a PV guest
name = "web"
uuid = 'f3c1a2b4-0000-4c1d-9e2f-123456789abc'
memory = 512
vcpus = 2; maxvcpus = 4   # two statements on one line
disk = [
    # the root disk
    '/var/lib/xen/images/web.qcow2,qcow2,xvda,rw',
    "phy:/dev/vg0/web-data,xvdb,w",   # data
    '/srv/iso/debian.iso,,hdc,cdrom',
]
on_crash = "restart"
"""


def parse_error(text: str, path: str = "/etc/xen/web.cfg") -> str:
    with pytest.raises(ConfigError) as info:
        parse_xl_cfg(text, path)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- well-formed files ---------------------------------------------------------

def test_realistic_domain_config_parses_every_setting() -> None:
    cfg = parse_xl_cfg(WEB_CFG, "/etc/xen/web.cfg")
    assert cfg.path == "/etc/xen/web.cfg"
    assert cfg.text == WEB_CFG
    assert cfg.get_str("name") == "web"
    assert cfg.get_str("uuid") == "f3c1a2b4-0000-4c1d-9e2f-123456789abc"
    assert cfg.settings["memory"].value == "512"
    assert cfg.get_long("memory") == 512
    assert cfg.get_long("vcpus") == 2
    assert cfg.get_long("maxvcpus") == 4
    assert cfg.get_list("disk") == (
        "/var/lib/xen/images/web.qcow2,qcow2,xvda,rw",
        "phy:/dev/vg0/web-data,xvdb,w",
        "/srv/iso/debian.iso,,hdc,cdrom",
    )
    assert cfg.get_str("on_crash") == "restart"


def test_settings_record_the_line_of_their_key() -> None:
    cfg = parse_xl_cfg(WEB_CFG)
    assert cfg.settings["name"].line == 2
    assert cfg.settings["vcpus"].line == 5
    assert cfg.settings["maxvcpus"].line == 5
    assert cfg.settings["disk"].line == 6
    assert cfg.settings["on_crash"].line == 12


def test_item_spans_cover_each_literal_including_quotes() -> None:
    cfg = parse_xl_cfg(WEB_CFG)
    spans = cfg.settings["disk"].items
    assert [WEB_CFG[a:b] for a, b in spans] == [
        "'/var/lib/xen/images/web.qcow2,qcow2,xvda,rw'",
        '"phy:/dev/vg0/web-data,xvdb,w"',
        "'/srv/iso/debian.iso,,hdc,cdrom'",
    ]
    start, end = cfg.settings["memory"].items[0]
    assert WEB_CFG[start:end] == "512"
    assert [cfg.line_of(a) for a, _ in spans] == [8, 9, 10]


def test_a_scalar_has_one_span() -> None:
    text = 'name = "web"\n'
    setting = parse_xl_cfg(text).settings["name"]
    assert setting == Setting("name", "web", 1, ((7, 12),))


def test_later_assignment_overrides_earlier() -> None:
    cfg = parse_xl_cfg('memory = 256\nmemory = 1024\n')
    assert cfg.settings["memory"].value == "1024"
    assert cfg.settings["memory"].line == 2


def test_plus_equals_appends_to_a_list_and_accumulates_spans() -> None:
    text = "disk = ['a']\ndisk += ['b', 'c']\n"
    setting = parse_xl_cfg(text).settings["disk"]
    assert setting.value == ("a", "b", "c")
    assert [text[a:b] for a, b in setting.items] == ["'a'", "'b'", "'c'"]


def test_plus_equals_concatenates_strings() -> None:
    text = 'extra = "console=hvc0"\nextra += " quiet"\n'
    setting = parse_xl_cfg(text).settings["extra"]
    assert setting.value == "console=hvc0 quiet"
    assert len(setting.items) == 2


def test_plus_equals_on_an_unset_key_assigns() -> None:
    assert parse_xl_cfg("disk += ['a']").get_list("disk") == ("a",)


def test_numbers_are_their_text_and_read_as_xl_reads_them() -> None:
    cfg = parse_xl_cfg("a = 0\nb = 42\nc = 0x1f\nd = 0777\ne = '-12'\nf = ' 7'\n")
    assert [cfg.settings[k].value for k in "abcdef"] == ["0", "42", "0x1f", "0777", "-12", " 7"]
    assert [cfg.get_long(k) for k in "abcdef"] == [0, 42, 31, 0o777, -12, 7]


def test_name_may_be_a_number_as_in_the_seed() -> None:
    assert parse_xl_cfg("name = 1397207577\n").get_str("name") == "1397207577"


@pytest.mark.parametrize("text", ["08", "12ab", "0x", "1 ", "''", "9223372036854775808"])
def test_get_long_refuses_what_xl_refuses(text: str) -> None:
    cfg = parse_xl_cfg(f"n = {quote_string(text)}\n", "c")
    with pytest.raises(ConfigError, match=r"^c:1: 'n' is not a valid number"):
        cfg.get_long("n")


def test_get_long_refuses_a_plus_equals_setting() -> None:
    cfg = parse_xl_cfg("a = 1\na += 2\n", "c")
    assert cfg.get_str("a") == "12"
    with pytest.raises(ConfigError, match=r"^c:2: 'a' is set with '\+='"):
        cfg.get_long("a")


def test_list_of_numbers_and_strings_with_trailing_comma() -> None:
    cfg = parse_xl_cfg('cpus = [0, 1, "2-3",]')
    assert cfg.settings["cpus"].value == ("0", "1", "2-3")


def test_nested_lists_as_vnuma_uses_them() -> None:
    text = 'vnuma = [ [ "pnode=0", "size=512" ],\n  [ "pnode=1", [] ], ]\n'
    setting = parse_xl_cfg(text).settings["vnuma"]
    assert setting.value == (("pnode=0", "size=512"), ("pnode=1", ()))
    assert [text[a:b] for a, b in setting.items] == [
        '[ "pnode=0", "size=512" ]', '[ "pnode=1", [] ]']


def test_empty_list() -> None:
    assert parse_xl_cfg("pci = []").get_list("pci") == ()
    assert parse_xl_cfg("pci = [\n]\n").settings["pci"].value == ()


def test_string_escapes() -> None:
    text = r'''s = "a\\b\"c\'d\ne\tf\a\b\f\v\rg"''' + "\nt = 'it\\'s'\n"
    cfg = parse_xl_cfg(text)
    assert cfg.get_str("s") == "a\\b\"c'd\ne\tf\a\b\f\v\rg"
    assert cfg.get_str("t") == "it's"


def test_octal_escape_drops_its_digits_as_libxlu_does() -> None:
    # libxlu_cfg.c NUMERIC_CHAR reads the digits after the first one in base 10 and
    # writes nothing: "a\012b" is "ab" to xl.
    assert parse_xl_cfg('s = "a\\012b"').get_str("s") == "ab"
    assert parse_xl_cfg('s = "a\\0 12b"').get_str("s") == "ab"


def test_comments_blank_lines_and_semicolons_are_ignored() -> None:
    text = "\n# comment\n\n;;\na = 'x#not a comment' # comment\n   \n"
    assert parse_xl_cfg(text).settings["a"].value == "x#not a comment"


def test_dotted_and_underscored_keys() -> None:
    cfg = parse_xl_cfg("a.b_c9 = 1\n")
    assert cfg.settings["a.b_c9"].value == "1"


@pytest.mark.parametrize("key", ["_a", "Name", "nAme"])
def test_keys_are_lowercase_letters_first(key: str) -> None:
    assert "unexpected character" in parse_error(f"{key} = 1\n")


def test_empty_text_has_no_settings() -> None:
    assert parse_xl_cfg("").settings == {}


def test_crlf_line_endings_are_refused_as_xl_refuses_them() -> None:
    assert parse_error('name = "web"\r\nmemory = 512\r\n') == (
        "/etc/xen/web.cfg:1: carriage return (xl's lexer refuses DOS line ends): "
        "'name = \"web\"'")


def test_one_stray_last_character_is_ignored_as_xl_ignores_it() -> None:
    assert parse_xl_cfg("a = 1 #").get_str("a") == "1"
    assert parse_xl_cfg("a = 1\r").get_str("a") == "1"
    assert "comment at the end" in parse_error("a = 1 # no newline")


# -- accessors ------------------------------------------------------------------

def test_get_str_default_when_missing() -> None:
    cfg = parse_xl_cfg("")
    assert cfg.get_str("name") is None
    assert cfg.get_str("name", "dflt") == "dflt"


def test_get_str_rejects_a_list() -> None:
    cfg = parse_xl_cfg("name = ['a']\n", "c")
    with pytest.raises(ConfigError, match=r"^c:1: 'name' is a list but must be a single value"):
        cfg.get_str("name")


def test_get_list_refuses_a_single_string_as_xl_reads_no_item_from_it() -> None:
    cfg = parse_xl_cfg("disk = '/x,,xvda'\n", "c")
    with pytest.raises(ConfigError, match=r"^c:1: 'disk' is a single string, not a list: xl "
                                          r"reads no item from it \(write disk = \[ ... \]\)"):
        cfg.get_list("disk")


def test_get_list_missing_is_empty() -> None:
    assert parse_xl_cfg("").get_list("disk") == ()


def test_get_list_number_items_are_strings() -> None:
    assert parse_xl_cfg("irqs = [ 9, 0x10 ]\n").get_list("irqs") == ("9", "0x10")


def test_get_list_refuses_a_nested_list_item_naming_its_line() -> None:
    cfg = parse_xl_cfg("disk = [\n  'a',\n  ['b'],\n 'c']\n", "c")
    with pytest.raises(ConfigError, match=r"^c:3: item 2 of 'disk' is a list: xl stops reading "
                                          r"'disk' there"):
        cfg.get_list("disk")


# -- syntax errors: one line, file, line number, quoted line ------------------------

def test_unterminated_string_names_file_line_and_quotes_it() -> None:
    text = "\n" * 6 + 'disk = ["/x.qcow2,qcow2,xvda,rw\n'
    assert parse_error(text) == (
        "/etc/xen/web.cfg:7: unterminated string (a string ends on its line): "
        "'disk = [\"/x.qcow2,qcow2,xvda,rw'"
    )


def test_unterminated_string_at_end_of_file() -> None:
    assert parse_error("a = 'x") == ("/etc/xen/web.cfg:1: unterminated string (a string ends "
                                     "on its line): \"a = 'x\"")


def test_backslash_newline_does_not_continue_a_string() -> None:
    assert parse_error('a = "x\\\ny"\n').startswith("/etc/xen/web.cfg:1: unterminated string")


def test_invalid_escape() -> None:
    assert parse_error('a = 1\nb = "\\q"\n') == (
        "/etc/xen/web.cfg:2: invalid escape '\\\\q' in string: 'b = \"\\\\q\"'"
    )


@pytest.mark.parametrize("literal", ['"\\x41"', '"\\x4"', '"\\xff"'])
def test_every_hex_escape_is_refused_as_libxlu_refuses_it(literal: str) -> None:
    assert "libxlu refuses every \\x escape" in parse_error(f"b = {literal}\n")


def test_short_octal_escape_is_refused() -> None:
    assert "bad octal escape" in parse_error('b = "\\01"\n')


def test_missing_value() -> None:
    assert parse_error("a = 1\nname =\n") == "/etc/xen/web.cfg:2: missing value for 'name': 'name ='"


def test_missing_value_at_end_of_file() -> None:
    assert parse_error("name = ") == "/etc/xen/web.cfg:1: missing value for 'name': 'name ='"


def test_missing_equals() -> None:
    assert parse_error('\n\nname "web"\n') == (
        "/etc/xen/web.cfg:3: expected '=' after 'name', found string 'web': 'name \"web\"'"
    )


def test_two_values_in_one_statement() -> None:
    message = parse_error('name = "a" "b"\n')
    assert message.startswith("/etc/xen/web.cfg:1: expected end of statement after the value of 'name'")


def test_statement_must_start_with_a_name() -> None:
    assert parse_error("a = 1\n= 2\n") == (
        "/etc/xen/web.cfg:2: expected a setting name, found '=': '= 2'"
    )


def test_unexpected_character() -> None:
    assert parse_error("a = 1\nb = -1\n") == "/etc/xen/web.cfg:2: unexpected character '-': 'b = -1'"


def test_python_code_is_rejected_not_run() -> None:
    message = parse_error("import os\nos.system('touch /tmp/pwned')\n")
    assert message.startswith("/etc/xen/web.cfg:1: expected '=' after 'import'")


def test_decimal_number_is_refused() -> None:
    assert "no decimal numbers" in parse_error("a = 1.5\n")


def test_number_token_is_digits_then_hex_letters_and_x() -> None:
    assert parse_xl_cfg("a = 12abc\n").get_str("a") == "12abc"
    assert "expected end of statement" in parse_error("a = 12g\n")


def test_unterminated_list_names_the_opening_line() -> None:
    text = "a = 1\ndisk = [\n  'x',\n  'y',\n"
    assert parse_error(text) == "/etc/xen/web.cfg:2: unterminated list (no closing ']'): 'disk = ['"


def test_missing_comma_in_list_names_the_item_line() -> None:
    text = "disk = [\n  'x'\n  'y',\n]\n"
    assert parse_error(text) == (
        "/etc/xen/web.cfg:3: expected ',' or ']' in list, found string 'y': \"  'y',\""
    )


def test_empty_list_item_is_an_error() -> None:
    assert parse_error("disk = ['a',,'b']\n").startswith(
        "/etc/xen/web.cfg:1: expected a list item, found ','"
    )


def test_empty_nested_list_item_is_an_error() -> None:
    assert "expected a list item, found ','" in parse_error("a = [[1],,[2]]\n")


def test_plus_equals_list_onto_string_is_an_error() -> None:
    assert parse_error("a = 'x'\na += ['y']\n") == (
        "/etc/xen/web.cfg:2: cannot add a list to a string or a string to a list for 'a': \"a += ['y']\""
    )


def test_plus_equals_with_numbers_concatenates_their_text() -> None:
    assert parse_xl_cfg("a = 1\na += 2\n").get_str("a") == "12"


def test_error_messages_escape_control_characters_in_the_quoted_line() -> None:
    message = parse_error("a = \x01\n")
    assert message == "/etc/xen/web.cfg:1: unexpected character '\\x01': 'a = \\x01'"


def test_config_error_is_a_usage_error_with_exit_code_2() -> None:
    with pytest.raises(UsageError) as info:
        parse_xl_cfg("a =")
    assert info.value.exit_code == 2


# -- files -------------------------------------------------------------------------

def test_load_reads_the_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "web.cfg"
    path.write_text(WEB_CFG, encoding="utf-8")
    cfg = load_xl_cfg(path)
    assert isinstance(cfg, XlConfig)
    assert cfg.path == str(path)
    assert cfg.get_str("name") == "web"


def test_load_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text("name = 'web'\nmemory = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}:2: missing value for 'memory': 'memory ='") + "$"):
        load_xl_cfg(path)


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.cfg"
    with pytest.raises(ConfigError, match="^" + re.escape(f"config file not found: {path}") + "$"):
        load_xl_cfg(str(path))


def test_load_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(f"cannot read config file {tmp_path}: Is a directory") + "$"):
        load_xl_cfg(tmp_path)


def test_load_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.cfg"
    path.write_text("a = 1\n", encoding="utf-8")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, os.strerror(13), str(path))

    monkeypatch.setattr("commands.config.safe_read.open", refuse, raising=False)
    with pytest.raises(ConfigError, match="^" + re.escape(f"cannot read config file {path}: Permission denied") + "$"):
        load_xl_cfg(path)


def test_load_undecodable_bytes_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.cfg"
    path.write_bytes(b"name = 'web'\ndescription = 'caf\xe9'\n")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}:2: not UTF-8 text (byte 0xe9)") + "$"):
        load_xl_cfg(path)


def test_load_refuses_a_utf8_bom_as_xl_does(tmp_path: Path) -> None:
    path = tmp_path / "bom.cfg"
    path.write_bytes(b"\xef\xbb\xbfname = 'web'\n")
    with pytest.raises(ConfigError, match="byte-order mark"):
        load_xl_cfg(path)


def test_load_path_with_nul_byte_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_xl_cfg("/etc/xen/a\x00b.cfg")


# -- quote_string and replace_spans ----------------------------------------------------

@pytest.mark.parametrize("quote", ['"', "'"])
def test_quote_string_escapes_quotes_backslashes_and_newlines(quote: str) -> None:
    value = "it's a \"path\"\\with\nnewline\tand\x7f"
    literal = quote_string(value, quote)
    assert "\n" not in literal
    assert parse_xl_cfg(f"k = {literal}\n").get_str("k") == value


def test_quote_string_refuses_other_quote_characters() -> None:
    with pytest.raises(ValueError):
        quote_string("x", "`")


def test_replace_spans_rewrites_one_disk_entry_keeping_comments() -> None:
    cfg = parse_xl_cfg(WEB_CFG)
    first = cfg.settings["disk"].items[0]
    new = quote_string("/var/lib/xen/snapshots/web/overlay.qcow2,qcow2,xvda,rw", "'")
    rewritten = replace_spans(WEB_CFG, {first: new})
    assert rewritten == WEB_CFG.replace(
        "'/var/lib/xen/images/web.qcow2,qcow2,xvda,rw'", new
    )
    assert "# the root disk" in rewritten and "# data" in rewritten
    again = parse_xl_cfg(rewritten)
    assert again.get_list("disk")[0] == "/var/lib/xen/snapshots/web/overlay.qcow2,qcow2,xvda,rw"
    assert again.get_list("disk")[1:] == cfg.get_list("disk")[1:]


def test_replace_spans_several_spans_in_any_order() -> None:
    assert replace_spans("abcdef", {(4, 5): "E", (0, 1): "AA", (2, 2): "-"}) == "AAb-cdEf"


def test_replace_spans_with_nothing_returns_text() -> None:
    assert replace_spans("abc", {}) == "abc"


def test_replace_spans_refuses_overlaps_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        replace_spans("abcdef", {(0, 3): "x", (2, 4): "y"})
    with pytest.raises(ValueError):
        replace_spans("abc", {(2, 9): "x"})


# -- properties --------------------------------------------------------------------------

@settings(max_examples=400)
@given(st.text())
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        cfg = parse_xl_cfg(text, "fuzz.cfg")
    except ConfigError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("fuzz.cfg:")
    else:
        assert all(isinstance(s, Setting) for s in cfg.settings.values())


_CFG_ALPHABET = st.sampled_from(list("ab_=+[],;#'\"\\ \n\t0x1.9fq-") + ["\r", "\x00", "é"])


@settings(max_examples=400)
@given(st.text(_CFG_ALPHABET, max_size=60))
def test_config_like_text_parses_or_raises_config_error(text: str) -> None:
    try:
        parse_xl_cfg(text)
    except ConfigError as error:
        assert "\n" not in str(error)


def test_quote_string_refuses_nul_which_xl_cannot_read() -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote_string("a\x00b")


@settings(max_examples=300)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
       st.sampled_from(['"', "'"]))
def test_quote_string_round_trips_any_string(value: str, quote: str) -> None:
    literal = quote_string(value, quote)
    cfg = parse_xl_cfg(f"key = {literal}\nlist = [ {literal}, ]\n")
    assert cfg.get_str("key") == value
    assert cfg.get_list("list") == (value,)
    start, end = cfg.settings["key"].items[0]
    assert cfg.text[start:end] == literal
