# SPDX-License-Identifier: GPL-2.0-or-later
"""README's start-up claim, measured on every agent executable: "the core imports no enum, dataclasses, typing,
logging or subprocess on the monitor path; heavy libraries (PyMySQL, pyghmi, lxml) are imported only by the
actions that use them".

Each agent runs as Pacemaker runs it (/usr/bin/python3 -S, a clean environment) under `-X importtime`, which
prints every module the first time it is imported, nested under the module whose import pulled it in. A
forbidden module is accepted only inside the subtree of what the action needs by its nature, named per
scenario with the reason (a promotion score is published with crm_attribute, so subprocess; fence_ipmi talks
to a BMC, so socket and pyghmi). The running cases use the real kernel: an address on a veth in a private
network namespace, a tmpfs in a private mount namespace; Stateful's scores go to a file CIB (CIB_file) through
Pacemaker's own crm_attribute.
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from testlib import AGENTS, FENCE, NODE_PYTHON, ROOT, terminate

FORBIDDEN = ("enum", "dataclasses", "typing", "logging", "subprocess")
HEAVY = ("pymysql", "pyghmi", "cryptography", "lxml")  # cryptography: what pyghmi's RMCP+ pays for
NODE = "hamail-imports"
VBMC_PASSWORD = "Imp-Cost-Pw-31"

EMPTY_CIB = f"""<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration><crm_config/><nodes><node id="1" uname="{NODE}"/></nodes><resources/><constraints/></configuration>
  <status><node_state id="1" uname="{NODE}"/></status>
</cib>
"""


def parse_importtime(stderr: str) -> list[tuple[str, tuple[str, ...]]]:
    """Each module in -X importtime output, with the chain of modules whose import pulled it in (innermost
    first): a module's line follows the lines of what it imported, which are indented one level deeper."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        field = line.rsplit("|", 1)[1]
        if field.strip() != "imported package":  # the header line
            rows.append((len(field) - len(field.lstrip(" ")), field.strip()))
    found = []
    for index, (depth, name) in enumerate(rows):
        chain, level = [], depth
        for later_depth, later in rows[index + 1:]:
            if later_depth < level:
                chain.append(later)
                level = later_depth
        found.append((name, tuple(chain)))
    return found


def importtime(argv: list[str], env: dict, stdin: str | None = None,
               prefix: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, list[tuple[str, tuple[str, ...]]]]:
    """Run an agent executable under python3 -S -X importtime (after a namespace prefix, if any): the result
    and what it imported (parse_importtime)."""
    result = subprocess.run([*prefix, NODE_PYTHON, "-S", "-X", "importtime", *argv], env=env, input=stdin,
                            capture_output=True, text=True, timeout=120)
    return result, parse_importtime(result.stderr)


def offences(found, allowed_roots=()) -> list[str]:
    """The forbidden or heavy modules imported outside the subtrees of allowed_roots, with their importers."""
    top = lambda module: module.split(".", 1)[0]  # noqa: E731
    bad = []
    for name, chain in found:
        if top(name) in FORBIDDEN + HEAVY and not any(top(m) in allowed_roots for m in (name, *chain)):
            bad.append(" <- ".join((name, *chain)))
    return bad


def ocf_env(name: str, tmp: pathlib.Path, interval_ms: int = 0, **params: str) -> dict:
    """The environment pacemaker-execd gives a monitor of agents/<name> (interval 0: a probe)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": f"imp-{name}",
           "OCF_RESOURCE_TYPE": name, "OCF_RESOURCE_PROVIDER": "hamail", "OCF_RA_VERSION_MAJOR": "1",
           "OCF_RA_VERSION_MINOR": "1", "OCF_RESKEY_CRM_meta_interval": str(interval_ms),
           "OCF_RESKEY_CRM_meta_timeout": "20000", "OCF_RESKEY_CRM_meta_on_node": NODE, "HA_RSCTMP": str(tmp)}
    env.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
    return env


def in_namespace(kind: str, setup: str) -> tuple[str, ...]:
    """A command prefix running `setup` (sh) in a new private namespace of this kind, then the command."""
    flags = {"net": ("-n",), "mount": ("-m", "--propagation", "private")}[kind]
    return ("unshare", *flags, "sh", "-ec", setup + '\nexec "$@"', "sh")


def _scenario(case: str, tmp: pathlib.Path):
    """(agent, env, namespace prefix, expected exit code, agent module, allowed roots) of one measured monitor."""
    state = tmp / "state"
    if case == "Dummy-probe":
        return "Dummy", ocf_env("Dummy", tmp, state=str(state)), (), 7, "hamail.agents.dummy", ()
    if case == "Dummy-running":
        state.write_text("running")
        return "Dummy", ocf_env("Dummy", tmp, 10000, state=str(state)), (), 0, "hamail.agents.dummy", ()
    if case in ("Stateful-probe", "Stateful-unpromoted"):
        cib = tmp / "cib.xml"
        cib.write_text(EMPTY_CIB)
        env = ocf_env("Stateful", tmp, 0 if case == "Stateful-probe" else 11000, state=str(state))
        env["CIB_file"] = str(cib)
        if case == "Stateful-unpromoted":
            state.write_text("unpromoted")
        # Every monitor publishes or withdraws the promotion score with crm_attribute (as pacemaker's
        # Stateful does): hamail.system.runner imports subprocess, and what it imports, to run it.
        return "Stateful", env, (), 0 if state.exists() else 7, "hamail.agents.stateful", ("subprocess",)
    if case == "IPaddr2-probe":
        env = ocf_env("IPaddr2", tmp, ip="203.0.113.77", cidr_netmask="24")  # on no interface of this host
        return "IPaddr2", env, (), 7, "hamail.agents.ipaddr2.agent", ()
    if case == "IPaddr2-running":
        setup = ("ip link add imp0 type veth peer name imp1; ip link set imp1 up; ip link set imp0 up; "
                 "ip addr add 192.0.2.77/24 dev imp0")
        env = ocf_env("IPaddr2", tmp, 10000, ip="192.0.2.77", cidr_netmask="24", nic="imp0")
        return "IPaddr2", env, in_namespace("net", setup), 0, "hamail.agents.ipaddr2.agent", ()
    if case == "Filesystem-probe":
        (tmp / "mnt").mkdir()
        env = ocf_env("Filesystem", tmp, device=str(tmp / "no-such-device"), directory=str(tmp / "mnt"), fstype="ext4")
        return "Filesystem", env, (), 7, "hamail.agents.filesystem.agent", ()
    if case == "Filesystem-mounted-depth20":
        (tmp / "mnt").mkdir()
        env = ocf_env("Filesystem", tmp, 20000, device="impfs", directory=str(tmp / "mnt"), fstype="tmpfs")
        env["OCF_CHECK_LEVEL"] = "20"
        prefix = in_namespace("mount", f"mount -t tmpfs impfs {tmp / 'mnt'}")
        return "Filesystem", env, prefix, 0, "hamail.agents.filesystem.agent", ()
    if case == "galera-probe":
        datadir = tmp / "datadir"
        datadir.mkdir()
        env = ocf_env("galera", tmp, wsrep_cluster_address=f"gcomm://{NODE}", datadir=str(datadir),
                      pid=str(tmp / "mysqld.pid"), socket=str(tmp / "mysqld.sock"), check_passwd="imp-secret")
        return "galera", env, (), 7, "hamail.agents.galera.agent", ()
    if case == "garbd-probe":
        env = ocf_env("garbd", tmp, wsrep_cluster_address="gcomm://node1:4567,node2:4567",
                      wsrep_cluster_name="imp", pid=str(tmp / "garbd.pid"), log=str(tmp / "garbd.log"))
        return "garbd", env, (), 7, "hamail.agents.garbd.agent", ()
    raise AssertionError(case)


OCF_CASES = ["Dummy-probe", "Dummy-running", "Stateful-probe", "Stateful-unpromoted", "IPaddr2-probe",
             "IPaddr2-running", "Filesystem-probe", "Filesystem-mounted-depth20", "galera-probe", "garbd-probe"]


@pytest.mark.parametrize("case", OCF_CASES)
def test_ocf_monitor_imports_nothing_forbidden(case, tmp_path):
    """The monitor runs, gives its code, and imports none of the forbidden or heavy modules."""
    name, env, prefix, code, module, allowed = _scenario(case, tmp_path)
    result, found = importtime([str(AGENTS / name), "monitor"], env, prefix=prefix)
    output = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    context = f"{case}: rc={result.returncode} output={output}"
    assert result.returncode == code, context
    assert module in [m for m, _ in found], context  # the measurement saw the agent itself
    assert offences(found, allowed) == [], context


@pytest.fixture
def vbmc_port(tmp_path):
    """A hamail-vbmc on 127.0.0.1 (its port), stopped afterwards."""
    password = tmp_path / "vbmc-password"
    password.write_text(VBMC_PASSWORD + "\n")
    password.chmod(0o600)
    proc = subprocess.Popen([NODE_PYTHON, str(ROOT / "lab" / "hamail-vbmc"), "--foreground", "--address",
                             "127.0.0.1", "--port", "0", "--password-file", str(password),
                             "--log-file", str(tmp_path / "vbmc.log")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready "), line
        yield int(line.split()[1])
    finally:
        terminate(proc)
        proc.stdout.close()


@pytest.mark.parametrize("action,out", [("monitor", ""), ("status", "Status: ON\n")])
def test_fence_ipmi_pays_only_for_the_bmc(vbmc_port, action, out):
    """fence_ipmi's monitor and status: socket and pyghmi (with cryptography) are what talking to a BMC costs;
    nothing else forbidden, and no lxml (metadata only)."""
    stdin = f"action={action}\nip=127.0.0.1\nipport={vbmc_port}\nusername=admin\npassword={VBMC_PASSWORD}\n"
    result, found = importtime([str(FENCE / "fence_ipmi")], {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, stdin)
    assert (result.returncode, result.stdout) == (0, out), result.stderr[-2000:]
    names = [m for m, _ in found]
    assert "hamail.agents.fence_ipmi.pyghmi_session" in names and "pyghmi.ipmi.private.session" in names
    assert offences(found, ("socket", "pyghmi")) == []


@pytest.mark.parametrize("name", ["Dummy", "galera"])
def test_the_measurement_sees_heavy_imports(name, tmp_path):
    """meta-data builds its XML with lxml: the same measurement reports it, with the module that imported it."""
    result, found = importtime([str(AGENTS / name), "meta-data"], ocf_env(name, tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line for line in offences(found) if line.startswith("lxml")], offences(found)


def test_parse_nesting():
    """The importer chain follows importtime's indentation; an allowed root covers its whole subtree."""
    stderr = ("import time: self [us] | cumulative | imported package\n"
              "import time:        10 |         10 |       enum\n"
              "import time:        10 |         20 |     re\n"
              "import time:        10 |         30 |   json\n"
              "import time:        10 |         10 |   os\n"
              "import time:        10 |         50 | hamail.agents.x\n"
              "agent output between the lines\n"
              "import time:        10 |         10 | subprocess\n")
    found = parse_importtime(stderr)
    assert found == [("enum", ("re", "json", "hamail.agents.x")), ("re", ("json", "hamail.agents.x")),
                     ("json", ("hamail.agents.x",)), ("os", ("hamail.agents.x",)), ("hamail.agents.x", ()),
                     ("subprocess", ())]
    assert offences(found) == ["enum <- re <- json <- hamail.agents.x", "subprocess"]
    assert offences(found, ("json", "subprocess")) == []
