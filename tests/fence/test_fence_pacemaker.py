"""fence_ipmi under a real pacemaker-fenced (the lab's 1-node cluster), parameters arriving on stdin.

The vbmc runs inside the node's network namespace on 127.0.0.1 and simulates a machine named
mailnode9 (pcmk_host_list), so fencing it does not take the one cluster node down.
"""

import subprocess
import time

import pytest

from fence_support import PASSWORD, VBMC, free_udp_port

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
    assert proc.stdout.readline().startswith("ready")
    yield port, log
    proc.terminate()
    proc.wait(10)


def _primitive(port: int) -> str:
    attrs = {"pcmk_host_list": TARGET, "ip": "127.0.0.1", "ipport": str(port), "username": "admin",
             "password": PASSWORD, "lanplus": "1", "power_timeout": "10"}
    pairs = "".join(f'<nvpair id="{DEVICE}-{k}" name="{k}" value="{v}"/>' for k, v in attrs.items())
    return (f'<primitive id="{DEVICE}" class="stonith" type="fence_ipmi">'
            f'<instance_attributes id="{DEVICE}-ia">{pairs}</instance_attributes></primitive>')


def test_pacemaker_fenced_drives_fence_ipmi(cluster1, node_vbmc):
    port, log = node_vbmc
    node = cluster1.nodes[0]
    run = lambda *argv, **kw: cluster1.run(node, list(argv), timeout=120, **kw)  # noqa: E731
    stonith_was = run("crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--query",
                      "--quiet").stdout.strip()
    # Through stdin (--xml-pipe): the password must not appear in any argv.
    run("cibadmin", "--create", "--scope", "resources", "--xml-pipe", input=_primitive(port), check=True)
    try:
        # fenced registers CIB devices only while fencing is enabled.
        cluster1.set_property("stonith-enabled", "true", node)
        deadline = time.monotonic() + 60
        while DEVICE not in run("stonith_admin", "--list-registered").stdout:
            assert time.monotonic() < deadline, run("stonith_admin", "--list-registered")
            time.sleep(1)
        assert DEVICE in run("stonith_admin", "--list", TARGET).stdout
        metadata = run("stonith_admin", "--metadata", "--agent", "fence_ipmi")
        assert metadata.returncode == 0 and 'name="fence_ipmi"' in metadata.stdout

        result = run("stonith_admin", "--fence", TARGET, "--timeout", "60")
        assert result.returncode == 0, result.stderr + cluster1.logs_tail(node)
        assert "power off (was on)" in log.read_text()
        result = run("stonith_admin", "--unfence", TARGET, "--timeout", "60")
        assert result.returncode == 0, result.stderr
        assert "power on (was off)" in log.read_text()
        result = run("stonith_admin", "--reboot", TARGET, "--timeout", "60")
        assert result.returncode == 0, result.stderr
        assert log.read_text().count("power off (was on)") == 2
        assert log.read_text().count("power on (was off)") == 2
        history = run("stonith_admin", "--history", TARGET, "--verbose").stdout
        assert "successful" in history or "done" in history, history
    finally:
        run("crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update",
            stonith_was or "false")
        run("cibadmin", "--delete", "--xml-text", f'<primitive id="{DEVICE}"/>')
