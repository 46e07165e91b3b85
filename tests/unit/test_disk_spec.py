"""Tests for xl disk spec parsing and formatting (commands.config.disk_spec)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.config.disk_spec import DiskSpec, format_disk_spec, parse_disk_spec
from commands.errors import ConfigError

GUEST = DiskSpec(vdev="hda", target="/dev/vg/guest")
ISO = DiskSpec(vdev="hdc", target="/root/image.iso", access="ro", devtype="cdrom")


def bad(spec: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_disk_spec(spec)
    message = str(info.value)
    assert message.startswith(f"bad disk spec {spec!r}: ")
    assert "\n" not in message
    return message[len(f"bad disk spec {spec!r}: "):]


# -- the documented equivalent forms ---------------------------------------------------

@pytest.mark.parametrize("spec", [
    "/dev/vg/guest,,hda",
    "/dev/vg/guest,raw,hda,rw",
    "format=raw, vdev=hda, access=rw, target=/dev/vg/guest",
])
def test_three_documented_forms_give_the_same_disk(spec: str) -> None:
    assert parse_disk_spec(spec) == GUEST


def test_deprecated_format_prefix_form_is_the_same_disk() -> None:
    disk = parse_disk_spec("raw:/dev/vg/guest,hda,w")
    assert disk == GUEST._replace(prefix="raw:")


@pytest.mark.parametrize("spec", [
    "/root/image.iso,,hdc,cdrom",
    "/root/image.iso,,hdc,,cdrom",
    "/root/image.iso,raw,hdc,devtype=cdrom",
    "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
])
def test_documented_cdrom_forms_give_the_same_read_only_cdrom(spec: str) -> None:
    assert parse_disk_spec(spec) == ISO


def test_legacy_vdev_cdrom_suffix_sets_devtype() -> None:
    assert parse_disk_spec("raw:/root/image.iso,hdc:cdrom,ro") == ISO._replace(prefix="raw:")


def test_legacy_vdev_disk_suffix() -> None:
    assert parse_disk_spec("/x.img,raw,xvda:disk,w").devtype == "disk"


# -- defaults, positional and key=value mixes --------------------------------------------

def test_defaults_are_raw_and_read_write() -> None:
    disk = parse_disk_spec("/x.img,,xvda")
    assert (disk.format, disk.access, disk.devtype) == ("raw", "rw", "disk")
    assert disk.writable


def test_empty_positional_fields_keep_their_defaults() -> None:
    assert parse_disk_spec("/dev/vg/guest,,hda,") == GUEST
    assert parse_disk_spec("/x.qcow2,qcow2,xvda,").access == "rw"


def test_access_values_normalise() -> None:
    assert parse_disk_spec("/x,,xvda,r").access == "ro"
    assert parse_disk_spec("/x,,xvda,ro").access == "ro"
    assert parse_disk_spec("/x,,xvda,w").access == "rw"
    assert not parse_disk_spec("/x,,xvda,ro").writable


@pytest.mark.parametrize("fmt", ["raw", "qcow", "qcow2", "vhd", "qed"])
def test_every_format_is_accepted(fmt: str) -> None:
    assert parse_disk_spec(f"/x.img,{fmt},xvda").format == fmt


def test_whitespace_before_items_is_skipped_and_after_them_kept_as_xl_does() -> None:
    spec = "  /var/lib/xen/web.qcow2, qcow2,\txvda , rw"
    assert parse_disk_spec(spec) == DiskSpec(vdev="xvda ", target="/var/lib/xen/web.qcow2",
                                             format="qcow2")
    assert parse_disk_spec("vdev=xvda,target=/x/y  ").target == "/x/y  "


def test_spaces_around_equals_are_refused_as_xl_refuses_them() -> None:
    assert bad("format = raw, vdev=xvda, target=/x").startswith("bad disk syntax")
    assert bad("vdev =xvda, target=/x").startswith("bad disk syntax")


def test_one_trailing_comma_after_target_is_dropped() -> None:
    assert parse_disk_spec("vdev=xvda, target=/x/y,").target == "/x/y"
    assert parse_disk_spec("vdev=xvda, target=/x/y,,").target == "/x/y,"
    assert format_disk_spec(DiskSpec("xvda", "/x/y,")).endswith("target=/x/y,,")


def test_keys_before_positionals_fill_the_positional_slots() -> None:
    disk = parse_disk_spec("format=qcow2, /x.qcow2, xvda, ro")
    assert disk == DiskSpec(vdev="xvda", target="/x.qcow2", format="qcow2", access="ro")


def test_target_key_swallows_commas() -> None:
    disk = parse_disk_spec("vdev=xvda, format=qcow2, target=/srv/a,b=c,d.qcow2")
    assert disk.target == "/srv/a,b=c,d.qcow2"
    assert disk.format == "qcow2"


def test_named_target_may_follow_an_empty_positional_target() -> None:
    assert parse_disk_spec(",raw,hda,target=/dev/vg/guest") == GUEST


def test_spec_with_newline_whitespace_like_xl() -> None:
    assert parse_disk_spec("/dev/vg/guest,\n raw,\n hda") == GUEST


# -- prefixes ------------------------------------------------------------------------

def test_phy_prefix_is_stripped_and_recorded() -> None:
    disk = parse_disk_spec("phy:/dev/vg0/web,xvda,w")
    assert disk == DiskSpec(vdev="xvda", target="/dev/vg0/web", prefix="phy:")


def test_whitespace_after_a_prefix_is_skipped_but_trailing_kept() -> None:
    assert parse_disk_spec("phy: /dev/vg0/web ,xvda").target == "/dev/vg0/web "


def test_a_prefix_skips_the_positional_format_slot_like_xm() -> None:
    disk = parse_disk_spec("file:/srv/web.img,xvda,r")
    assert (disk.target, disk.vdev, disk.access, disk.prefix) == ("/srv/web.img", "xvda", "ro", "file:")


@pytest.mark.parametrize("prefix", ["phy:", "file:", "tap:", "tap:aio:", "aio:", "tap2:", "tapdisk:", "ioemu:"])
def test_ignored_prefixes_are_stripped(prefix: str) -> None:
    disk = parse_disk_spec(f"{prefix}/x.img,xvda,w")
    assert (disk.target, disk.prefix, disk.format) == ("/x.img", prefix, "raw")


def test_qcow2_prefix_sets_the_format() -> None:
    disk = parse_disk_spec("qcow2:/x.qcow2,xvda,w")
    assert (disk.target, disk.format, disk.prefix) == ("/x.qcow2", "qcow2", "qcow2:")


@pytest.mark.parametrize("fmt", ["raw", "qcow", "qcow2", "vhd"])
def test_format_prefix_after_tap(fmt: str) -> None:
    disk = parse_disk_spec(f"tap:{fmt}:/x.img,xvda,w")
    assert (disk.target, disk.format, disk.prefix) == ("/x.img", fmt, f"tap:{fmt}:")


def test_script_prefix_sets_the_block_script() -> None:
    disk = parse_disk_spec("iscsi:iqn.2001-05.com.example:disk1,xvda,w")
    assert (disk.script, disk.target) == ("block-iscsi", "iqn.2001-05.com.example:disk1")


def test_colon_word_that_is_not_a_prefix_stays_in_the_target() -> None:
    assert parse_disk_spec("abc:def,raw,xvda").target == "abc:def"


def test_unknown_prefix_is_an_error() -> None:
    assert bad("foo:/x.img,xvda,w") == "unknown deprecated disk prefix near 'foo:'"
    assert "unknown deprecated disk prefix" in bad("qed:/x.img,xvda,w")


def test_prefix_format_conflicting_with_format_key() -> None:
    assert "format respecified" in bad("format=vhd,qcow2:/x.img,xvda")


# -- cdroms ------------------------------------------------------------------------

def test_cdrom_flag_makes_the_disk_read_only() -> None:
    disk = parse_disk_spec("/x.iso,raw,hdc,rw,cdrom")
    assert (disk.devtype, disk.access, disk.writable) == ("cdrom", "ro", False)


def test_empty_cdrom_drive_in_xend_syntax() -> None:
    assert parse_disk_spec(",hdc:cdrom,r") == DiskSpec(
        vdev="hdc", target=None, format="empty", access="ro", devtype="cdrom"
    )


def test_empty_cdrom_drive_in_key_syntax() -> None:
    disk = parse_disk_spec("vdev=hdc, devtype=cdrom, target=")
    assert (disk.target, disk.format, disk.devtype) == (None, "empty", "cdrom")


# -- other options ----------------------------------------------------------------------

def test_backendtype_and_script() -> None:
    disk = parse_disk_spec("/x.qcow2,qcow2,xvda,backendtype=qdisk,script=block-drbd")
    assert (disk.backendtype, disk.script) == ("qdisk", "block-drbd")


def test_extra_options_are_kept_in_canonical_order() -> None:
    one = parse_disk_spec("direct-io-safe,discard,/x,,xvda,backend=drv,specification=virtio")
    two = parse_disk_spec("specification=virtio,backend=drv,discard,direct-io-safe,/x,,xvda")
    assert one == two
    assert one.extra == (("backend", "drv"), ("specification", "virtio"),
                         ("direct-io-safe", None), ("discard", None))


def test_the_last_of_contradictory_flags_wins() -> None:
    assert parse_disk_spec("/x,,xvda,discard,no-discard").extra == (("no-discard", None),)
    assert parse_disk_spec("/x,,xvda,no-discard,discard").extra == (("discard", None),)
    assert parse_disk_spec("/x,,xvda,colo,no-colo").extra == (("no-colo", None),)


def test_colo_options_are_accepted_and_kept() -> None:
    disk = parse_disk_spec("vdev=hda,colo,colo-host=10.0.0.2,colo-port=9000,colo-export=e,"
                           "active-disk=/a,hidden-disk=/h,target=/x")
    assert disk.extra == (("colo-host", "10.0.0.2"), ("colo-export", "e"), ("active-disk", "/a"),
                          ("hidden-disk", "/h"), ("colo-port", "9000"), ("colo", None))
    assert parse_disk_spec(format_disk_spec(disk)) == disk


def test_trusted_is_a_positional_parameter_to_xl_4_17() -> None:
    # xl 4.17's generated scanner has no trusted/untrusted rules (libxlutil.so agrees)
    assert "unknown value for format near 'trusted'" in bad("/x,trusted,xvda")
    assert "near 'grant_usage'" in bad("/x,,xvda,grant_usage=1")  # a 4.18 key
    assert bad("/x,,xvda,rw  ") == "unknown value for access near 'rw  '"


def test_repeating_the_same_value_is_allowed() -> None:
    assert parse_disk_spec("/dev/vg/guest,raw,hda,format=raw") == GUEST


def test_an_empty_value_may_be_given_again() -> None:
    assert parse_disk_spec("vdev=,vdev=hda,target=/dev/vg/guest") == GUEST


# -- format_disk_spec ---------------------------------------------------------------------

def test_format_disk_spec_canonical_form_with_target_last() -> None:
    disk = parse_disk_spec("tap:qcow2:/srv/a.qcow2,hda:cdrom,r")
    assert format_disk_spec(disk) == "format=qcow2, vdev=hda, access=ro, devtype=cdrom, target=/srv/a.qcow2"
    disk = DiskSpec(vdev="xvda", target="/srv/a,b.qcow2", format="qcow2", backendtype="qdisk",
                    script="block-x", extra=(("backend", "drv"), ("discard", None)))
    assert format_disk_spec(disk) == (
        "format=qcow2, vdev=xvda, access=rw, backendtype=qdisk, script=block-x, "
        "backend=drv, discard, target=/srv/a,b.qcow2"
    )


@pytest.mark.parametrize("spec", [
    "/dev/vg/guest,,hda",
    "phy:/dev/vg0/web,xvda,w",
    "tap:aio:qcow2:/x.qcow2,xvda,r",
    "/root/image.iso,,hdc,cdrom",
    ",hdc:cdrom,r",
    "iscsi:iqn.x:y,xvda,w",
    "vdev=xvda, discard, backend=drv, backendtype=qdisk, target=/a, b=c",
])
def test_format_disk_spec_round_trips_dropping_the_prefix(spec: str) -> None:
    disk = parse_disk_spec(spec)
    assert parse_disk_spec(format_disk_spec(disk)) == disk._replace(prefix="")


# -- errors ------------------------------------------------------------------------------

def test_spec_without_vdev_is_an_error() -> None:
    assert bad("/x.img").startswith("no vdev")
    assert bad("/x.img,raw").startswith("no vdev")
    assert bad("target=/x.img").startswith("no vdev")


def test_empty_target_is_only_for_a_cdrom() -> None:
    assert bad(",raw,xvda") == "no target given (only a cdrom drive may be empty)"
    assert bad("vdev=xvda") == "no target specified (and device not removable)"


def test_empty_spec_is_an_error() -> None:
    assert bad("") == "no vdev specified"
    assert bad("  \t") == "no vdev specified"


def test_unknown_format() -> None:
    assert bad("/x,qcow3,xvda") == "unknown value for format near 'qcow3'"


def test_format_empty_with_a_target_is_what_xl_reads() -> None:
    assert parse_disk_spec("/x,empty,hdc,cdrom").format == "empty"


def test_unknown_access() -> None:
    assert bad("/x,,xvda,rwx") == "unknown value for access near 'rwx'"


def test_unknown_devtype() -> None:
    assert bad("/x,,xvda,devtype=floppy") == "unknown value for type near 'devtype=floppy'"
    assert bad("/x,,xvda:floppy") == "unknown deprecated type near 'floppy'"


def test_the_last_devtype_wins() -> None:
    assert parse_disk_spec("/x,,hdc:disk,cdrom").devtype == "cdrom"
    assert parse_disk_spec("/x,,hdc,cdrom,devtype=disk").devtype == "disk"


def test_unknown_backendtype() -> None:
    assert bad("/x,,xvda,backendtype=nfs") == "unknown value for backendtype near 'nfs'"


def test_unknown_parameter() -> None:
    assert bad("/x,,xvda,cache=none") == "unknown parameter near 'cache=n'"


def test_bad_value_for_specification() -> None:
    assert bad("/x,,xvda,specification=scsi") == "unknown value for specification near 'scsi'"


def test_too_many_positional_parameters() -> None:
    assert bad("/x,raw,xvda,rw,extra") == "too many positional parameters near 'extra'"


def test_target_respecified() -> None:
    assert bad("/x,,xvda,target=/y").startswith("target respecified")


def test_vdev_respecified() -> None:
    assert bad("/x,,xvda,vdev=xvdb").startswith("vdev respecified")


def test_positional_target_with_equals_sign_is_an_error() -> None:
    assert bad("/srv/a=b.img,,xvda") == "bad disk syntax near '=b.img,,xvda'"


def test_long_spec_is_shortened_in_the_message() -> None:
    spec = "/x" * 200 + ",bogus,xvda"
    with pytest.raises(ConfigError) as info:
        parse_disk_spec(spec)
    assert len(str(info.value)) < 300


# -- properties ---------------------------------------------------------------------------

def _must_parse_or_config_error(spec: str) -> None:
    try:
        disk = parse_disk_spec(spec)
    except ConfigError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("bad disk spec ")
    else:
        assert disk.vdev
        if disk.target is None or "\n" not in disk.target:
            assert parse_disk_spec(format_disk_spec(disk)) == disk._replace(prefix="")


@settings(max_examples=400)
@given(st.text())
def test_any_text_parses_or_raises_config_error(spec: str) -> None:
    _must_parse_or_config_error(spec)


_PIECES = st.sampled_from([
    "/x.img", "/a,b", "", " ", "raw", "qcow2", "empty", "xvda", "hdc:cdrom", "hda:disk", "r", "rw",
    "cdrom", "discard", "no-discard", "trusted", "phy:", "tap:", "aio:", "qcow2:", "foo:", "iscsi:",
    "format=", "format=vhd", "vdev=", "vdev=xvdb", "access=ro", "devtype=cdrom", "devtype=disk",
    "backendtype=qdisk", "script=x", "backend=d", "target=", "target=/t,u", "grant_usage=1", "=", ":",
    "specification=xen", "\n", "\t",
])


@settings(max_examples=600)
@given(st.lists(_PIECES, max_size=7).map(",".join))
def test_spec_like_text_parses_or_raises_and_round_trips(spec: str) -> None:
    _must_parse_or_config_error(spec)


@settings(max_examples=300)
@given(st.lists(_PIECES, max_size=7).map("".join))
def test_glued_pieces_parse_or_raise_and_round_trip(spec: str) -> None:
    _must_parse_or_config_error(spec)
