# SPDX-License-Identifier: GPL-2.0-or-later
"""fence_ipmi under a real pacemaker-fenced (the lab's 1-node cluster), parameters arriving on stdin.

The vbmcs run inside the node's network namespace on loopback addresses and simulate machines named mailnode9
(and mailnode8), so fencing them does not take the one cluster node down.
"""

import contextlib
import subprocess

import pytest
from lxml import etree

from fence_support import PASSWORD, VBMC, free_udp_port, wait_for
from testlib import terminate

TARGET = "mailnode9"
DEVICE = "fence-ipmi-test"


@contextlib.contextmanager
def vbmcs_in_node(cluster1, tmp_path, addresses: tuple[str, ...]):
    """hamail-vbmcs inside node1's network namespace, one per loopback address, all on the same free port (as
    BMCs on a management network); yields (port, [log path per address])."""
    node = cluster1.nodes[0]
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD)
    port = free_udp_port()
    netns = cluster1.netns(node)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    procs, logs = [], []
    try:
        for address in addresses:
            log = tmp_path / f"vbmc-{address}.log"
            proc = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/bin/python3", str(VBMC), "--foreground",
                                     "--address", address, "--port", str(port), "--password-file",
                                     str(password_file), "--log-file", str(log)], stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            logs.append(log)
            line = proc.stdout.readline()
            assert line.startswith("ready"), line
        yield port, logs
    finally:
        for proc in procs:
            terminate(proc)
            proc.stdout.close()


@pytest.fixture
def node_vbmc(cluster1, tmp_path):
    """A hamail-vbmc on 127.0.0.1 inside node1's network namespace; yields (port, log path)."""
    with vbmcs_in_node(cluster1, tmp_path, ("127.0.0.1",)) as (port, logs):
        yield port, logs[0]


def _primitive(port: int, **attrs: str) -> str:
    attrs = attrs or {"pcmk_host_list": TARGET, "ip": "127.0.0.1", "username": "admin", "password": PASSWORD,
                      "lanplus": "1", "power_timeout": "10"}
    attrs = dict(attrs, ipport=str(port))
    pairs = "".join(f'<nvpair id="{DEVICE}-{k}" name="{k}" value="{v}"/>' for k, v in attrs.items())
    return (f'<primitive id="{DEVICE}" class="stonith" type="fence_ipmi">'
            f'<instance_attributes id="{DEVICE}-ia">{pairs}</instance_attributes></primitive>')


def _power_log(log) -> list[str]:
    """The power operations the vbmc carried out, in order."""
    return [line[line.index("power "):] for line in log.read_text().splitlines() if " (was " in line]


@contextlib.contextmanager
def stonith_device(cluster1, node: str, primitive: str):
    """The primitive in the CIB with fencing enabled, registered by pacemaker-fenced; removed afterwards and
    stonith-enabled restored (the cluster fixture is shared: the next test must find it as it was)."""
    query = cluster1.run(node, ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--query",
                                "--quiet"], timeout=120)
    assert query.returncode in (0, 105), query.stderr  # 105: not set (the default)
    stonith_was = query.stdout.strip() if query.returncode == 0 else ""
    # Through stdin (--xml-pipe): the password must not appear in any argv.
    created = cluster1.run(node, ["cibadmin", "--create", "--scope", "resources", "--xml-pipe"], input=primitive,
                           timeout=120)
    assert created.returncode == 0, created.stderr
    try:
        # fenced registers CIB devices only while fencing is enabled.
        cluster1.set_property("stonith-enabled", "true", node)
        wait_for(lambda: DEVICE in cluster1.run(node, ["stonith_admin", "--list-registered"], timeout=120).stdout,
                 60, f"pacemaker-fenced to register {DEVICE}")
        # Its start runs the agent's monitor: the device must be started, not failed.
        settled = cluster1.run(node, ["crm_resource", "--wait", "--timeout", "60s"], timeout=120)
        assert settled.returncode == 0, settled.stderr
        status = etree.fromstring(cluster1.crm_mon_xml(node))
        resource = status.find(f".//resources//resource[@id='{DEVICE}']")
        assert (resource.get("role"), resource.get("failed")) == ("Started", "false"), \
            etree.tostring(status).decode()[-3000:]
        yield
    finally:
        cleanup = [cluster1.run(node, ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled"] +
                                (["--update", stonith_was] if stonith_was else ["--delete"]), timeout=120),
                   cluster1.run(node, ["cibadmin", "--delete", "--xml-text", f'<primitive id="{DEVICE}"/>'],
                                timeout=120)]
    assert [result.returncode for result in cleanup] == [0, 0], [result.stderr for result in cleanup]


def _runner(cluster1, node: str):
    """A command on the node that must succeed (the result is returned for its output)."""
    def run(*argv, **kw):
        result = cluster1.run(node, list(argv), timeout=120, **kw)
        assert result.returncode == 0, f"{argv}: rc={result.returncode} {result.stderr}\n{cluster1.logs_tail(node)}"
        return result
    return run


def test_pacemaker_fenced_drives_fence_ipmi(cluster1, node_vbmc):
    port, log = node_vbmc
    node = cluster1.nodes[0]
    run = _runner(cluster1, node)
    with stonith_device(cluster1, node, _primitive(port)):
        assert DEVICE in run("stonith_admin", "--list", TARGET).stdout
        metadata = run("stonith_admin", "--metadata", "--agent", "fence_ipmi")
        assert 'name="fence_ipmi"' in metadata.stdout

        run("stonith_admin", "--fence", TARGET, "--timeout", "60")
        assert _power_log(log) == ["power off (was on)"]
        run("stonith_admin", "--unfence", TARGET, "--timeout", "60")
        assert _power_log(log) == ["power off (was on)", "power on (was off)"]
        run("stonith_admin", "--reboot", TARGET, "--timeout", "60")
        assert _power_log(log) == ["power off (was on)", "power on (was off)"] * 2
        history = run("stonith_admin", "--history", TARGET, "--verbose").stdout
        events = [line.split(":", 1)[0] for line in history.splitlines() if f" of {TARGET} " in line]
        assert events == [f"{what} of {TARGET} successful" for what in ("reboot", "unfencing", "turning off")], \
            history  # newest first


def test_one_device_for_every_node_through_pcmk_host_map(cluster1, tmp_path):
    """fence_ipmilan's one-device pattern: no ip, port_as_ip=1, pcmk_host_map=node:bmc-address; fenced passes
    the target's BMC address as the plug and only that BMC's machine is fenced; the device's monitor (which
    names no target) succeeds."""
    node = cluster1.nodes[0]
    run = _runner(cluster1, node)
    with vbmcs_in_node(cluster1, tmp_path, ("127.0.0.2", "127.0.0.3")) as (port, (log9, log8)):
        primitive = _primitive(port, port_as_ip="1", pcmk_host_map=f"{TARGET}:127.0.0.2;mailnode8:127.0.0.3",
                               username="admin", password=PASSWORD, power_timeout="10")
        with stonith_device(cluster1, node, primitive):
            for target in (TARGET, "mailnode8"):
                assert DEVICE in run("stonith_admin", "--list", target).stdout
            run("stonith_admin", "--query", DEVICE, "--timeout", "60")  # the device's monitor
            run("stonith_admin", "--fence", "mailnode8", "--timeout", "60")
            assert (_power_log(log9), _power_log(log8)) == ([], ["power off (was on)"])
            run("stonith_admin", "--reboot", TARGET, "--timeout", "60")
            assert (_power_log(log9), _power_log(log8)) == (["power off (was on)", "power on (was off)"],
                                                            ["power off (was on)"])
