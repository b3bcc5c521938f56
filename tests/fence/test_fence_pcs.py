# SPDX-License-Identifier: GPL-2.0-or-later
"""fence_ipmi as pcs 0.11 sees it: `pcs stonith create ... --agent-validation` accepts every fence_ipmilan
parameter (pcs refuses a name the metadata lacks, and runs validate-all through crm_resource), the one-device
pcmk_host_map pattern, and `pcs stonith describe` documents the defaults that differ from fence_ipmilan's.

pcs finds stonith agents in /usr/sbin (through crm_resource): each pcs here runs in a private mount namespace
whose /usr/sbin has the checkout's fence_ipmi overlaid, as the installed package puts it there. Nothing outside
that namespace changes; the CIB is a file (pcs -f).
"""

import subprocess

import pytest
from lxml import etree

from fence_support import CLEAN_ENV, FENCE_IPMI

# A valid value for each fence_ipmilan parameter that has no default of its own (or whose default fence_ipmi
# refuses: lanplus=0 is IPMI 1.5), so that fence_ipmilan and fence_ipmi both accept the whole set.
VALUES = {"auth": "md5", "cipher": "3", "hexadecimal_kg": "0badc0ffee", "ip": "192.0.2.10", "lanplus": "1",
          "password": "Pcs-Pw-55", "password_script": "/usr/bin/printf pw", "plug": "192.0.2.11", "target": "0x82",
          "username": "admin", "quiet": "0", "verbose": "0", "verbose_level": "0", "disable_timeout": "false",
          "port_as_ip": "1", "use_sudo": "0", "privlvl": "operator", "method": "cycle"}
# Parameters pcs itself handles for every stonith agent: 'action' is refused (pcmk_*_action replace it),
# help and version are not stonith options (pcs leaves them out for fence_ipmilan too).
PCS_OWN = ("action", "help", "version")
MOUNT = 'mount -t overlay overlay -o "lowerdir=$1:/usr/sbin" /usr/sbin; shift; exec "$@"'


@pytest.fixture
def pcs(tmp_path):
    """Run pcs (with a CIB file) where /usr/sbin/fence_ipmi is the checkout's; returns the CompletedProcess."""
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "fence_ipmi").symlink_to(FENCE_IPMI)  # a symlink: the agent finds lib/ beside itself
    cib = tmp_path / "cib.xml"
    empty = subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, env=CLEAN_ENV, check=True)
    cib.write_text(empty.stdout)

    def run(*args: str, cib_file: bool = True) -> subprocess.CompletedProcess:
        argv = ["pcs", *(["-f", str(cib)] if cib_file else []), *args]
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", MOUNT, "sh", str(sbin),
                               *argv], capture_output=True, text=True, env=CLEAN_ENV, timeout=120)

    run.cib = cib
    return run


def upstream_parameters() -> dict:
    """fence_ipmilan's parameters: name -> (default or None, deprecated)."""
    result = subprocess.run(["fence_ipmilan", "-o", "metadata"], capture_output=True, env=CLEAN_ENV, check=True)
    return {p.get("name"): (p.find("content").get("default"), p.get("deprecated") == "1")
            for p in etree.fromstring(result.stdout).iter("parameter")}


def every_parameter(tmp_path, deprecated: bool) -> list:
    """name=value for every fence_ipmilan parameter pcs passes to an agent: the current names, or the deprecated
    ones instead of the names that replace them."""
    params = upstream_parameters()
    replaced = {"ipaddr": "ip", "login": "username", "passwd": "password", "passwd_script": "password_script",
                "port": "plug", "debug": "debug_file", "sudo": "use_sudo"}
    assert sorted(name for name, (_, old) in params.items() if old) == sorted(replaced)
    values = dict(VALUES, debug_file=str(tmp_path / "debug.log"))
    chosen = {}
    for name, (default, old) in params.items():
        if name in PCS_OWN or old != deprecated and (old or name in replaced.values()):
            continue
        value = values.get(replaced.get(name, name), default)
        assert value is not None, f"no value for {name}: add one to VALUES"
        chosen[name] = value
    return [f"{name}={value}" for name, value in chosen.items()]


@pytest.mark.parametrize("deprecated", [False, True], ids=["names", "deprecated-names"])
def test_pcs_accepts_every_fence_ipmilan_parameter_with_agent_validation(pcs, tmp_path, deprecated):
    pairs = every_parameter(tmp_path, deprecated)
    theirs = pcs("stonith", "create", "upstream", "fence_ipmilan", *pairs, "--agent-validation")
    assert theirs.returncode == 0, f"the values must suit fence_ipmilan too: {theirs.stderr}"
    result = pcs("stonith", "create", "ours", "fence_ipmi", *pairs, "--agent-validation")
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr, result.stderr
    primitive = etree.parse(str(pcs.cib)).find(".//primitive[@id='ours']")
    assert primitive.get("type") == "fence_ipmi"
    stored = {nv.get("name"): nv.get("value") for nv in primitive.iter("nvpair")}
    assert stored == dict(pair.split("=", 1) for pair in pairs)


def test_pcs_one_device_for_every_node_with_port_as_ip(pcs):
    """The pcmk_host_map pattern: no ip, port_as_ip=1; pcs and validate-all accept it."""
    result = pcs("stonith", "create", "all-bmcs", "fence_ipmi", "port_as_ip=1", "username=admin", "password=pw",
                 "pcmk_host_map=node1:192.0.2.1;node2:192.0.2.2", "--agent-validation")
    assert result.returncode == 0, result.stderr
    # Without port_as_ip, ip is what is missing, and validate-all says so through pcs.
    result = pcs("stonith", "create", "no-address", "fence_ipmi", "username=admin", "--agent-validation")
    assert result.returncode == 1 and "fence_ipmi: error: configuration: ip is required" in result.stderr, \
        result.stderr


def test_pcs_shows_every_problem_and_the_reason_lanplus_0_is_refused(pcs):
    result = pcs("stonith", "create", "bad", "fence_ipmi", "ip=192.0.2.1", "lanplus=0", "ipport=70000",
                 "method=bounce", "--agent-validation")
    assert result.returncode == 1, result.stderr
    lines = [line.strip() for line in result.stderr.splitlines() if "fence_ipmi: error:" in line]
    assert len(lines) == 1, result.stderr
    for part in ("ipport: 70000", "method: 'bounce'", "lanplus=0 asks for IPMI 1.5", "set lanplus=1"):
        assert part in lines[0], part
    assert etree.parse(str(pcs.cib)).find(".//primitive[@id='bad']") is None


def test_pcs_describe_documents_the_defaults_that_differ(pcs):
    result = pcs("stonith", "describe", "fence_ipmi", cib_file=False)
    assert result.returncode == 0, result.stderr
    described = {}
    for line in result.stdout.splitlines():
        name, sep, text = line.strip().partition(": ")
        if sep:
            described[name] = text
    assert "fence_ipmilan: 0" in described["lanplus"] and "refused" in described["lanplus"]
    assert "fence_ipmilan: 2" in described["power_wait"]
    assert "fence_ipmilan: 1" in described["stonith_status_sleep"]
    assert "fence_ipmilan: true when run from Pacemaker" in described["disable_timeout"]
    for ignored in ("shell_timeout", "plug_separator", "use_sudo", "sudo_path", "ipmitool_path"):
        assert "(ignored: " in described[ignored], ignored
    assert "port_as_ip" in described["ip"]
