# SPDX-License-Identifier: GPL-2.0-or-later
"""Typed parameter declarations: conversion, validation, defaults, deprecation, secrets."""

import re

import pytest

from hamail.params import Config, Kind, Param, ParamTable, parse_boolean, parse_duration
from hamail.secret import Secret


@pytest.mark.parametrize("text,seconds", [("30", 30), ("30s", 30), ("500ms", 0.5), ("5min", 300),
                                          ("2h", 7200), (" 1.5 s ", 1.5), ("10sec", 10)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "ten", "-5", "5 parsecs", "1.2.3s", "5m5s"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text,value", [("true", True), ("YES", True), ("1", True), ("on", True),
                                        ("false", False), ("no", False), ("0", False), ("Off", False)])
def test_booleans(text, value):
    assert parse_boolean(text) is value


def test_bad_boolean():
    with pytest.raises(ValueError, match="not a boolean"):
        parse_boolean("maybe")


TABLE = ParamTable(
    Param("ip", Kind.STRING, "address", required=True, unique_group="ip"),
    Param("count", Kind.INTEGER, "count", default="5", minimum=1, maximum=10),
    Param("port", Kind.PORT, "port", default="3306"),
    Param("mode", Kind.SELECT, "mode", default="a", choices=("a", "b")),
    Param("wait", Kind.DURATION, "wait", default="2s"),
    Param("dir", Kind.PATH, "dir", default="/var/lib/x"),
    Param("flag", Kind.BOOLEAN, "flag", default="false"),
    Param("secret", Kind.STRING, "password", private=True),
    Param("old_wait", Kind.DURATION, "old name of wait", deprecated=True, replaced_with="wait"),
)


def env(**values):
    return {f"OCF_RESKEY_{k}": v for k, v in values.items()}


def test_defaults_and_types():
    config, errors = TABLE.parse(env(ip="192.0.2.1"))
    assert errors == []
    assert config.ip == "192.0.2.1" and config["count"] == 5 and config.port == 3306
    assert config.mode == "a" and config.wait == 2.0 and config.dir == "/var/lib/x" and config.flag is False
    assert config.secret is None
    assert config.given("ip") and not config.given("count")


def test_missing_required_and_invalid_values_are_all_reported():
    config, errors = TABLE.parse(env(count="11", port="70000", mode="c", wait="soon", dir="rel/path", flag="perhaps"))
    names = [e.name for e in errors]
    assert names == ["ip", "count", "port", "mode", "wait", "dir", "flag"]
    assert "is required" in str(errors[0])
    assert "out of range" in errors[1].message and "70000" in errors[2].message
    assert "one of a, b" in errors[3].message
    # invalid values fall back to defaults so that stop can still work with the rest
    assert config.count == 5 and config.port == 3306 and config.wait == 2.0


def test_empty_value_means_unset():
    config, errors = TABLE.parse(env(ip="x", count=""))
    assert errors == [] and config.count == 5 and not config.given("count")


def test_private_values_are_secrets_and_never_in_messages():
    config, _ = TABLE.parse(env(ip="x", secret="hunter2"))
    assert isinstance(config.secret, Secret) and config.secret.reveal() == "hunter2"
    assert "hunter2" not in repr(config) and "hunter2" not in f"{config.secret}"
    assert config.secrets() == [Secret("hunter2")]
    table = ParamTable(Param("pin", Kind.INTEGER, "pin", private=True))
    _, errors = table.parse(env(pin="12ab34"))
    assert errors and "12ab34" not in errors[0].message


def test_deprecated_name_feeds_new_one():
    config, errors = TABLE.parse(env(ip="x", old_wait="7s"))
    assert errors == [] and config.wait == 7.0
    config, _ = TABLE.parse(env(ip="x", old_wait="7s", wait="3s"))
    assert config.wait == 3.0


def test_config_is_immutable():
    config, _ = TABLE.parse(env(ip="x"))
    with pytest.raises(AttributeError):
        config.ip = "y"
    with pytest.raises(AttributeError):
        TABLE[0].name = "z"


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="bad-name", kind=Kind.STRING, shortdesc="x"), "bad parameter name"),
    (dict(name="s", kind=Kind.SELECT, shortdesc="x"), "needs choices"),
    (dict(name="r", kind=Kind.STRING, shortdesc="x", required=True, default="a"), "cannot have a default"),
    (dict(name="i", kind=Kind.INTEGER, shortdesc="x", default="many"), "not an integer"),
])
def test_bad_declarations_fail_at_import(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Param(**kwargs)


def test_table_rejects_duplicates_and_dangling_replacements():
    with pytest.raises(ValueError, match="duplicate"):
        ParamTable(Param("a", Kind.STRING, "x"), Param("a", Kind.STRING, "y"))
    with pytest.raises(ValueError, match="unknown"):
        ParamTable(Param("a", Kind.STRING, "x", deprecated=True, replaced_with="b"))


def test_help_text_lists_every_parameter_but_no_private_default():
    text = TABLE.help_text()
    # one entry a parameter, in declaration order: "  name (flags)" then its short description
    assert re.findall(r"^  (\w+) \(", text, re.M) == [param.name for param in TABLE]
    assert "  ip (string; required)\n      address" in text and "  count (integer; default 5)\n" in text
    assert "  old_wait (duration; deprecated, use wait)\n" in text
    private = ParamTable(Param("pin", Kind.STRING, "PIN", private=True, default="0000"),
                         Param("user", Kind.STRING, "user", default="admin")).help_text()
    assert private == "  pin (string)\n      PIN\n  user (string; default admin)\n      user"


def test_config_replace_keeps_the_original():
    config, _ = TABLE.parse(env(ip="x"))
    changed = config.replace(count=7)
    assert changed.count == 7 and changed.given("count") and config.count == 5 and not config.given("count")
    assert type(changed) is type(config) is Config


def test_a_tolerated_value_takes_the_fallback_and_is_a_warning_not_an_error():
    table = ParamTable(Param("flag", Kind.BOOLEAN, "flag", default="true", fallback="false"),
                       Param("strict", Kind.BOOLEAN, "strict", default="true"))
    config, errors = table.parse({"OCF_RESKEY_flag": "maybe", "OCF_RESKEY_strict": "maybe"})
    assert config.flag is False and config.given("flag")
    assert [str(e) for e in config.tolerated] == [
        "parameter flag: 'maybe' is not a boolean (use true or false): read as false, as the upstream agent does"]
    assert [e.name for e in errors] == ["strict"]
    config, errors = table.parse({"OCF_RESKEY_flag": "yes"})
    assert (config.flag, config.tolerated, errors) == (True, (), [])
    with pytest.raises(ValueError):
        Param("bad", Kind.BOOLEAN, "bad", fallback="perhaps")
