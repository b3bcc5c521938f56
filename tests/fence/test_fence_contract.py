"""The fencing contract without a BMC: parsing, metadata, help, lazy imports, and a fuzz of garbage input."""

import io
import os
import random
import subprocess
import contextlib

import pytest
from lxml import etree

from fence_support import FENCE_IPMI, ROOT, free_udp_port, run_fence
from hamail.fence import agent as fencing
from hamail.fence.metadata import help_text
from hamail.fence.options import UNREACHABLE, FenceError, UsageError, convert, parse_argv, parse_stdin
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
                   "verbose": "1", "ipport": "6230", "power_timeout": "5", "hexadecimal_kg": "ab",
                   "method": "cycle"}
    assert parse_argv(IPMI_OPTIONS, ["--action=status", "--ip=h", "--lanplus"]) == \
        {"action": "status", "ip": "h", "lanplus": "1"}
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


def test_metadata_offers_fence_ipmilans_options_and_aliases():
    ours = {p.get("name"): p for p in metadata([str(FENCE_IPMI)]).iter("parameter")}
    upstream = {p.get("name"): p for p in metadata(["fence_ipmilan"]).iter("parameter")}
    wanted = ["ip", "ipaddr", "ipport", "username", "login", "password", "passwd", "password_script",
              "passwd_script", "lanplus", "auth", "cipher", "privlvl", "hexadecimal_kg", "target", "method",
              "power_wait", "power_timeout", "delay", "retry_on", "plug", "port", "verbose", "debug_file",
              "ipmitool_path", "ipmitool_timeout", "login_timeout"]
    for name in wanted:
        assert name in ours and name in upstream, name
        if name in ("plug", "port"):
            continue  # upstream's placeholder is [ip] (port_as_ip); ours says what it is: ignored
        assert ours[name].find("getopt").get("mixed") == upstream[name].find("getopt").get("mixed"), name
    assert ours["ip"].get("obsoletes") == "ipaddr" and ours["ipaddr"].get("deprecated") == "1"
    assert ours["power_wait"].find("content").get("default") == "0"
    actions = [a.get("name") for a in metadata([str(FENCE_IPMI)]).iter("action")]
    assert "list" not in actions and {"on", "off", "reboot", "status", "monitor", "metadata",
                                      "validate-all"} <= set(actions)
    assert "pcmk_host_list" in metadata([str(FENCE_IPMI)]).findtext("longdesc")


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
    # An unreachable BMC is found out before pyghmi is needed: the poisoned import never runs.
    result = run_fence(["-o", "status", "-a", "127.0.0.1", "-u", str(free_udp_port())], env=env)
    assert result.returncode == 1 and result.stderr.startswith("fence_ipmi: error: unreachable: "), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_help_lists_every_option():
    text = help_text(AGENT)
    for option in IPMI_OPTIONS:
        assert option.mixed() in text


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
            assert errors[0].isprintable() and len(errors[0]) < 400, errors[0]
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
            assert len(result.stderr.splitlines()) == 1, (text, result.stderr)
    result = run_fence(stdin="\x00\xff garbage\n" * 1000)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1  # no ip, unreadable lines ignored


def test_binary_stdin_is_one_line_error():
    result = subprocess.run([str(FENCE_IPMI)], input=os.urandom(4096), capture_output=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and b"Traceback" not in result.stderr
