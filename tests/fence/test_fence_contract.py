# SPDX-License-Identifier: GPL-2.0-or-later
"""The fencing contract without a BMC: parsing, metadata, help, lazy imports, and a fuzz of garbage input."""

import io
import os
import random
import re
import subprocess
import contextlib

import pytest
from lxml import etree

from fence_support import FENCE_IPMI, ROOT, free_udp_port, run_fence
from hamail.fence import agent as fencing
from hamail.fence.metadata import help_text
from hamail.fence.options import UNREACHABLE, FenceError, UsageError, convert, parse_argv, parse_stdin, typed
from hamail.system.clock import FakeClock
from hamail.agents.fence_ipmi.agent import AGENT, IPMI_OPTIONS
from hamail.secret import Secret

RNG = ROOT / "tests" / "fence" / "fence-metadata.rng"


def metadata(argv) -> etree._Element:
    """Parsed metadata of an agent."""
    result = subprocess.run(argv + ["-o", "metadata"], capture_output=True, check=True)
    return etree.fromstring(result.stdout)


# -- parsing ---------------------------------------------------------------------------------------------

def test_stdin_rules():
    raw, ignored = parse_stdin(IPMI_OPTIONS, "# comment\n\n  action=off  \nip=10.0.0.1\nip=127.0.0.1\n"
                                             "nodename=n1\nno equals sign\npassword=a=b#c\n")
    assert raw == {"action": "off", "ip": "127.0.0.1", "password": "a=b#c"}
    assert ignored == ["nodename", "(malformed line)"]


def test_canonical_name_beats_legacy_alias_in_any_order():
    assert parse_stdin(IPMI_OPTIONS, "ip=1.1.1.1\nipaddr=2.2.2.2\n")[0]["ip"] == "1.1.1.1"
    assert parse_stdin(IPMI_OPTIONS, "ipaddr=2.2.2.2\nip=1.1.1.1\n")[0]["ip"] == "1.1.1.1"
    assert parse_stdin(IPMI_OPTIONS, "ipaddr=2.2.2.2\nipaddr=3.3.3.3\n")[0]["ip"] == "3.3.3.3"
    raw = parse_stdin(IPMI_OPTIONS, "login=a\npasswd=b\nport=n1\noption=status\ndebug=/tmp/x\n")[0]
    assert raw == {"username": "a", "password": "b", "plug": "n1", "action": "status", "debug_file": "/tmp/x"}


def test_command_line_short_long_and_flags():
    raw = parse_argv(IPMI_OPTIONS, ["-o", "off", "-a", "10.0.0.1", "-l", "admin", "-p", "pw", "-P", "-vvv",
                                    "-u", "6230", "--power-timeout=5", "--hexadecimal-kg", "ab", "-m", "cycle"])
    assert raw == {"action": "off", "ip": "10.0.0.1", "username": "admin", "password": "pw", "lanplus": "1",
                   "verbose": "1", "verbose_level": "3", "ipport": "6230", "power_timeout": "5",
                   "hexadecimal_kg": "ab", "method": "cycle"}
    assert parse_argv(IPMI_OPTIONS, ["--action=status", "--ip=h", "--lanplus"]) == \
        {"action": "status", "ip": "h", "lanplus": "1"}
    # fence-agents: -v alone is verbose_level 1 (implied); an explicit --verbose-level wins over the count.
    assert parse_argv(IPMI_OPTIONS, ["-v"]) == {"verbose": "1"}
    assert parse_argv(IPMI_OPTIONS, ["-vv", "--verbose-level", "0"]) == {"verbose": "1", "verbose_level": "0"}
    # Options fence_ipmilan takes with a value although they are booleans or look like flags.
    assert parse_argv(IPMI_OPTIONS, ["--disable-timeout=true", "--port-as-ip", "-n", "10.0.0.9", "--use-sudo",
                                     "--stonith-status-sleep", "2"]) == \
        {"disable_timeout": "true", "port_as_ip": "1", "plug": "10.0.0.9", "use_sudo": "1",
         "stonith_status_sleep": "2"}
    with pytest.raises(UsageError):
        parse_argv(IPMI_OPTIONS, ["--nope"])
    with pytest.raises(UsageError):
        parse_argv(IPMI_OPTIONS, ["-o"])


def test_typed_frozen_options():
    opts = convert(IPMI_OPTIONS, {"ip": "h", "password": "pw", "power_timeout": "1500ms", "ipport": "6230",
                                  "lanplus": "yes"})
    assert opts.power_timeout == 1.5 and opts.ipport == 6230 and opts.lanplus is True
    assert isinstance(opts.password, Secret) and "pw" not in repr(opts)
    assert opts.method == "onoff" and opts.power_wait == 0 and opts.delay == 0 and opts.privlvl == "administrator"
    assert opts.given("ip") and not opts.given("method")
    with pytest.raises(AttributeError):
        opts.ip = "other"
    with pytest.raises(UsageError) as caught:
        convert(IPMI_OPTIONS, {"password": "", "hexadecimal_kg": "secret-ish", "ipport": "x"})
    assert "secret-ish" not in str(caught.value)
    # Every bad value is named, each once, and the rest still gets its typed value (or default).
    opts, problems = typed(IPMI_OPTIONS, {"ipport": "x", "delay": "later", "retry_on": "0", "ip": "h"})
    assert [p.split(":")[0] for p in problems] == ["ipport", "delay", "retry_on"]
    assert (opts.ip, opts.ipport, opts.delay) == ("h", 623, 0)
    problems = typed(IPMI_OPTIONS, {"ipport": "9" * 5000})[1]
    assert len(problems) == 1 and len(problems[0]) <= 160


def test_option_table_is_declared_once_and_immutable():
    names = [o.name for o in IPMI_OPTIONS]
    assert len(names) == len(set(names))
    with pytest.raises(AttributeError):
        IPMI_OPTIONS[0].short = "x"
    assert isinstance(IPMI_OPTIONS, tuple)


# -- metadata --------------------------------------------------------------------------------------------

def test_metadata_validates_against_the_fence_agents_shape():
    rng = etree.RelaxNG(etree.parse(str(RNG)))
    ours = metadata([str(FENCE_IPMI)])
    assert rng.validate(ours), rng.error_log
    assert rng.validate(metadata(["fence_ipmilan"])), "the schema must accept upstream's metadata too"


# Where our getopt spelling differs from fence_ipmilan's, and why.
MIXED_DIFFERS = {
    "verbose_level": "fence_ipmilan's '--verbose-level' hides that the option takes a value (--verbose-level=2)",
}


def test_metadata_offers_every_fence_ipmilan_parameter_and_action():
    """Strict: pcs refuses a parameter the metadata does not list, so every one of fence_ipmilan's must be in
    ours, spelled the same on the command line, deprecated the same way, never required where fence_ipmilan's is
    optional; a default that differs says so (naming fence_ipmilan) or the parameter says it is ignored."""
    ours_root, upstream_root = metadata([str(FENCE_IPMI)]), metadata(["fence_ipmilan"])
    ours = {p.get("name"): p for p in ours_root.iter("parameter")}
    upstream = {p.get("name"): p for p in upstream_root.iter("parameter")}
    assert sorted(set(upstream) - set(ours)) == []
    for name, theirs in upstream.items():
        mine = ours[name]
        if name not in MIXED_DIFFERS:
            assert mine.find("getopt").get("mixed") == theirs.find("getopt").get("mixed"), name
        for attribute in ("deprecated", "obsoletes"):
            assert mine.get(attribute) == theirs.get(attribute), (name, attribute)
        if theirs.get("required") == "0":
            assert mine.get("required") == "0", name
        default, upstream_default = mine.find("content").get("default"), theirs.find("content").get("default")
        text = mine.findtext("shortdesc")
        if default != upstream_default and not mine.get("deprecated"):
            assert f"fence_ipmilan: {upstream_default}" in text or "(ignored: " in text, (name, text)
    for name in MIXED_DIFFERS:
        assert ours[name].find("getopt").get("mixed") != upstream[name].find("getopt").get("mixed"), \
            f"{name} is spelled as fence_ipmilan's now: drop it from MIXED_DIFFERS"
    # disable_timeout has no published default on either side, but ours differs under Pacemaker: said so.
    assert "fence_ipmilan: true when run from Pacemaker" in ours["disable_timeout"].findtext("shortdesc")
    actions = {a.get("name"): a for a in ours_root.iter("action")}
    upstream_actions = {a.get("name"): a for a in upstream_root.iter("action")}
    assert sorted(set(upstream_actions) - set(actions)) == [] and "list" not in actions
    assert actions["on"].get("automatic") == "0"
    assert "pcmk_host_map" in ours_root.findtext("longdesc")


def test_metadata_and_validation_do_not_import_pyghmi_or_lxml(tmp_path):
    # Poisoned packages earlier on the path: importing them fails loudly.
    for name in ("pyghmi", "cryptography"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('imported " + name + "')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_fence(["-o", "metadata"], env=env)
    assert result.returncode == 0 and 'name="fence_ipmi"' in result.stdout, result.stderr
    assert run_fence(["-o", "validate-all", "-a", "127.0.0.1"], env=env).returncode == 0
    result = run_fence(["--help"], env=env)
    assert result.returncode == 0 and "--ip=[ip]" in result.stdout, result.stderr
    (tmp_path / "lxml").mkdir()
    (tmp_path / "lxml" / "__init__.py").write_text("raise ImportError('imported lxml')\n")
    result = run_fence(["-o", "validate-all", "-a", "127.0.0.1"], env=env)
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    result = run_fence(["-o", "manpage"], env=env)
    assert result.returncode == 0 and result.stdout.startswith(".TH FENCE_IPMI 8"), result.stderr
    # An unreachable BMC is found out before pyghmi is needed: the poisoned import never runs.
    result = run_fence(["-o", "status", "-a", "127.0.0.1", "-u", str(free_udp_port())], env=env)
    assert result.returncode == 1 and result.stderr.startswith("fence_ipmi: error: unreachable: "), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_help_lists_every_option():
    text = help_text(AGENT)
    for option in IPMI_OPTIONS:
        assert option.mixed() in text
    # Wrapped at 110 columns; only a word longer than that (the list of actions) may stick out.
    assert [line for line in text.splitlines() if len(line) > 110 and len(line.split()) > 1] == []


# -- man page --------------------------------------------------------------------------------------------

def test_manpage_is_valid_roff_that_man_renders(tmp_path):
    result = run_fence(["-o", "manpage"])
    assert result.returncode == 0 and result.stderr == "", result.stderr
    page = tmp_path / "fence_ipmi.8"
    page.write_text(result.stdout)
    # Every '-' is a minus sign (\-), as lintian's hyphen-used-as-minus-sign check wants: options copied from a
    # page rendered by a groff that keeps '-' a hyphen (U+2010) would not work.
    bare = [line for line in result.stdout.splitlines() if re.search(r"(?<!\\)-", line)]
    assert bare == [], bare[:3]
    # groff with every warning enabled: none may appear.
    groff = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True)
    assert (groff.returncode, groff.stderr) == (0, ""), groff.stderr
    man = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "MANPAGER": "cat", "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
    assert man.returncode == 0 and man.stderr == "", man.stderr
    text = man.stdout
    # man renders bold as overstrike when not to a terminal: col -b removes it (-x: spaces, not tabs).
    plain = subprocess.run(["col", "-bx"], input=text, capture_output=True, text=True, check=True).stdout
    sections = dict(re.findall(r"^([A-Z][A-Z ]+)\n(.*?)(?=^[A-Z]|\Z)", plain, re.M | re.S))
    assert {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "STDIN PARAMETERS", "ACTIONS", "EXIT STATUS"} <= \
        set(sections), sorted(sections)
    assert sections["NAME"].strip() == "fence_ipmi - Fence agent for IPMI (pyghmi, RMCP+)"

    def tags(section: str) -> set:
        """The tags of a section's .TP paragraphs (indented 7, the text after them or on the next line)."""
        return set(re.findall(r"^ {7}(\S+)(?: |$)", sections[section], re.M))

    # Every option, with ASCII hyphens (copied from the page, it must work), every stdin name, every action.
    for option in IPMI_OPTIONS:
        spelled = f"--{option.long}" + ("" if option.is_flag else f"={option.placeholder or 'value'}")
        assert spelled in sections["OPTIONS"], spelled
    names = {o.name for o in IPMI_OPTIONS if o.name not in ("help", "version")} | \
        {alias for o in IPMI_OPTIONS for alias in o.aliases}
    assert names <= tags("STDIN PARAMETERS"), sorted(names - tags("STDIN PARAMETERS"))
    assert set(AGENT.actions()) | {"list"} <= tags("ACTIONS")
    assert "fence_ipmilan: 0" in plain  # the documented default differences are there too


# -- fuzz ------------------------------------------------------------------------------------------------

KEYS = [o.name for o in IPMI_OPTIONS] + ["ipaddr", "login", "passwd", "port", "option", "nodename", "x" * 300,
                                         "", "=", "#", " action", "action ", "ÄÖÜ", "\x00"]
VALUES = ["", "0", "1", "-1", "yes", "off", "on", "reboot", "status", "metadata", "list", "99999999999999999999",
          "1e9", "nan", "inf", "-0.5", "5min", "x" * 5000, "\x00\x01\x02", "'quoted'", '"q"', "a=b=c", "\t",
          "127.0.0.1", "::1", "cycle", "operator", "17", "3", "0", "zz", "../../etc/passwd", "%s%n", "${HOME}",
          "\u202e", "😀"]


def _garbage(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randrange(0, 12)):
        roll = rng.random()
        if roll < 0.6:
            lines.append(f"{rng.choice(KEYS)}={rng.choice(VALUES)}")
        elif roll < 0.8:
            lines.append("".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(0, 40))))
        else:
            lines.append(rng.choice(["#" + rng.choice(VALUES), "", "   ", "=" * rng.randrange(1, 5)]))
    return "\n".join(lines) + rng.choice(["", "\n", "\r\n"])


@contextlib.contextmanager
def _fake_unreachable(opts, deadline, log):
    raise FenceError(UNREACHABLE, "fuzz: no BMC here")
    yield  # pragma: no cover


@pytest.mark.parametrize("seed", range(6))
def test_fuzz_stdin_in_process(seed):
    """600 garbage inputs: exit 0/1/2 only, and a failure is exactly one readable line, never a traceback."""
    rng = random.Random(seed)
    agent = AGENT.replace(connect=_fake_unreachable)
    for _ in range(100):
        text = _garbage(rng)
        if rng.random() < 0.5:
            text += "ip=127.0.0.1\n"
        out, err = io.StringIO(), io.StringIO()
        rc = fencing.run(agent, [], io.StringIO(text), out, err, clock=FakeClock())
        assert rc in (0, 1, 2), text
        assert "Traceback" not in err.getvalue() + out.getvalue(), text
        errors = [line for line in err.getvalue().splitlines() if line.startswith("fence_ipmi: error: ")]
        if rc == 1:
            assert len(errors) == 1, (text, err.getvalue())
            assert errors[0].isprintable() and len(errors[0]) <= len("fence_ipmi: error: ") + \
                fencing.MAX_ERROR_LINE + 1, errors[0]
            assert err.getvalue().endswith(errors[0] + "\n")
        else:
            assert not errors, (text, err.getvalue())


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_command_line_in_process(seed):
    rng = random.Random(100 + seed)
    flags = [f"-{o.short}" for o in IPMI_OPTIONS if o.short] + [f"--{o.long}" for o in IPMI_OPTIONS] + \
        ["--", "-", "--ip", "-x", "--action=", "-oo"]
    agent = AGENT.replace(connect=_fake_unreachable)
    for _ in range(100):
        argv = [rng.choice(flags + VALUES) for _ in range(rng.randrange(1, 8))]
        out, err = io.StringIO(), io.StringIO()
        rc = fencing.run(agent, argv, None, out, err, clock=FakeClock())
        assert rc in (0, 1, 2), argv
        assert "Traceback" not in err.getvalue(), argv
        if rc == 1:
            errors = [line for line in err.getvalue().splitlines() if line.startswith("fence_ipmi: error: ")]
            assert len(errors) == 1, (argv, err.getvalue())


def test_fuzz_real_executable():
    """The real agent, real processes: garbage plus a closed local port, so nothing leaves 127.0.0.1."""
    rng = random.Random(7)
    port = free_udp_port()
    for _ in range(15):
        text = _garbage(rng) + (f"\nip=127.0.0.1\nipport={port}\nlogin_timeout=1\nverbose=0\nquiet=0\ndelay=0\n"
                                "fence_timeout=5\n")
        result = run_fence(stdin=text, timeout=30)
        assert result.returncode in (0, 1, 2), text
        assert "Traceback" not in result.stderr
        if result.returncode == 1:
            # One error line, the last; warnings (an ignored option, say) may come before it.
            lines = result.stderr.splitlines()
            assert [line for line in lines if line.startswith("fence_ipmi: error: ")] == lines[-1:], \
                (text, result.stderr)
            assert all(line.startswith("fence_ipmi: WARNING: ") for line in lines[:-1]), (text, result.stderr)
    result = run_fence(stdin="\x00\xff garbage\n" * 1000)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1  # no ip, unreadable lines ignored


def test_binary_stdin_is_one_line_error():
    result = subprocess.run([str(FENCE_IPMI)], input=os.urandom(4096), capture_output=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and b"Traceback" not in result.stderr
