"""fence_ipmi under a real pacemaker-fenced (the lab's 1-node cluster), parameters arriving on stdin.

The vbmc runs inside the node's network namespace on 127.0.0.1 and simulates a machine named
mailnode9 (pcmk_host_list), so fencing it does not take the one cluster node down.
"""

import subprocess

import pytest

from fence_support import PASSWORD, VBMC, free_udp_port, wait_for
from testlib import terminate

TARGET = "mailnode9"
DEVICE = "fence-ipmi-test"


@pytest.fixture
def node_vbmc(cluster1, tmp_path):
    """A hamail-vbmc on 127.0.0.1 inside node1's network namespace; yields (port, log path)."""
    node = cluster1.nodes[0]
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD)
    port = free_udp_port()
    log = tmp_path / "vbmc.log"
    netns = cluster1.netns(node)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    proc = subprocess.Popen(["ip", "netns", "exec", netns, "/usr/bin/python3", str(VBMC), "--foreground",
                             "--address", "127.0.0.1", "--port", str(port), "--password-file", str(password_file),
                             "--log-file", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready"), line
        yield port, log
    finally:
        terminate(proc)
        proc.stdout.close()


def _primitive(port: int) -> str:
    attrs = {"pcmk_host_list": TARGET, "ip": "127.0.0.1", "ipport": str(port), "username": "admin",
             "password": PASSWORD, "lanplus": "1", "power_timeout": "10"}
    pairs = "".join(f'<nvpair id="{DEVICE}-{k}" name="{k}" value="{v}"/>' for k, v in attrs.items())
    return (f'<primitive id="{DEVICE}" class="stonith" type="fence_ipmi">'
            f'<instance_attributes id="{DEVICE}-ia">{pairs}</instance_attributes></primitive>')


def _power_log(log) -> list[str]:
    """The power operations the vbmc carried out, in order."""
    return [line[line.index("power "):] for line in log.read_text().splitlines() if " (was " in line]


def test_pacemaker_fenced_drives_fence_ipmi(cluster1, node_vbmc):
    port, log = node_vbmc
    node = cluster1.nodes[0]

    def run(*argv, **kw):
        """A command on the node; it must succeed (the result is returned for its output)."""
        result = cluster1.run(node, list(argv), timeout=120, **kw)
        assert result.returncode == 0, f"{argv}: rc={result.returncode} {result.stderr}\n{cluster1.logs_tail(node)}"
        return result

    query = cluster1.run(node, ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--query",
                                "--quiet"], timeout=120)
    assert query.returncode in (0, 105), query.stderr  # 105: not set (the default)
    stonith_was = query.stdout.strip() if query.returncode == 0 else ""
    # Through stdin (--xml-pipe): the password must not appear in any argv.
    run("cibadmin", "--create", "--scope", "resources", "--xml-pipe", input=_primitive(port))
    try:
        # fenced registers CIB devices only while fencing is enabled.
        cluster1.set_property("stonith-enabled", "true", node)
        wait_for(lambda: DEVICE in run("stonith_admin", "--list-registered").stdout, 60,
                 f"pacemaker-fenced to register {DEVICE}")
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
    finally:
        cleanup = [cluster1.run(node, ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled"] +
                                (["--update", stonith_was] if stonith_was else ["--delete"]), timeout=120),
                   cluster1.run(node, ["cibadmin", "--delete", "--xml-text", f'<primitive id="{DEVICE}"/>'],
                                timeout=120)]
    # The cluster fixture is shared: the next test must find it as it was.
    assert [result.returncode for result in cleanup] == [0, 0], [result.stderr for result in cleanup]
