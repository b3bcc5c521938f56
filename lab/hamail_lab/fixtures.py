# SPDX-License-Identifier: GPL-2.0-or-later
"""pytest plugin: session-scoped real clusters ``cluster1`` (1 node) and ``cluster3`` (3 nodes), and
``fenced_cluster3`` (per test: stonith enabled, a hamail-vbmc BMC and a fence_ipmi device per node).

Enable with ``pytest_plugins = ["hamail_lab.fixtures"]`` in the top conftest (after putting
``lab/`` on sys.path).  Each cluster is started on first use and stopped at session end,
also when tests fail; an atexit hook and SIGTERM/SIGHUP handlers stop clusters still
running if the session dies abnormally (SIGKILL cannot be caught: the next start() with
the same prefix removes the leftovers).  If another live test session already runs a
cluster with the same prefix, the fixture takes the next free one (hm3b, hm3c, ...;
bridges are separate, so the same subnet can be reused safely).  Tests that cut links or kill nodes must call
``cluster.heal()`` afterwards (in a finally) so later tests get a whole cluster.

Environment: HAMAIL_LAB_WORKDIR=<dir> puts the clusters' state (logs, CIBs) there instead
of pytest's temporary directory.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path
from typing import Iterator

import pytest

from .bmc import BmcNetwork
from .cluster import Cluster
from .hostsys import LabError

CHECKOUT = Path(__file__).resolve().parents[2]
SPECS = {
    "cluster1": {"nodes": 1, "prefix": "hm1", "subnet": "198.51.100"},
    "cluster3": {"nodes": 3, "prefix": "hm3", "subnet": "192.0.2"},
}


class SafetyNet:
    """Stops still-running clusters at interpreter exit or on SIGTERM/SIGHUP."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        """Start with no clusters and no handlers installed."""
        self.clusters: list[Cluster] = []
        self.previous: dict[int, object] = {}
        self.armed = False

    def add(self, cluster: Cluster) -> None:
        """Watch a cluster (installing the hooks on first use)."""
        self.clusters.append(cluster)
        if self.armed:
            return
        self.armed = True
        atexit.register(self.stop_all)
        for signum in self.SIGNALS:
            try:
                self.previous[signum] = signal.signal(signum, self.on_signal)
            except ValueError:  # not the main thread: atexit still covers normal exits
                pass

    def discard(self, cluster: Cluster) -> None:
        """Stop watching a cluster that was stopped normally."""
        if cluster in self.clusters:
            self.clusters.remove(cluster)

    def stop_all(self) -> None:
        """Stop every watched cluster, ignoring errors (best effort at exit)."""
        while self.clusters:
            cluster = self.clusters.pop()
            try:
                cluster.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass

    def disarm(self) -> None:
        """Remove the hooks again."""
        if not self.armed:
            return
        self.armed = False
        atexit.unregister(self.stop_all)
        for signum, handler in self.previous.items():
            try:
                signal.signal(signum, handler)
            except ValueError:
                pass
        self.previous.clear()

    def on_signal(self, signum: int, frame) -> None:
        """Stop the clusters, then let the previous handler (or the default action) run."""
        self.stop_all()
        previous = self.previous.get(signum, signal.SIG_DFL)
        self.disarm()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def require_root() -> None:
    """Skip the calling test when not root: the lab needs namespaces, bridges and mounts."""
    if os.geteuid() != 0:
        pytest.skip("hamail lab clusters need root (network/mount/PID namespaces, bridges)")


@pytest.fixture(scope="session")
def lab_safety_net() -> Iterator[SafetyNet]:
    """The session's SafetyNet (atexit + signal handlers for running clusters)."""
    net = SafetyNet()
    yield net
    net.stop_all()
    net.disarm()


@pytest.fixture(scope="session")
def lab_workdir(tmp_path_factory) -> Path:
    """Parent directory of the session clusters' state (HAMAIL_LAB_WORKDIR or a pytest temp dir)."""
    chosen = os.environ.get("HAMAIL_LAB_WORKDIR")
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("lab")


def free_prefix(prefix: str) -> str:
    """``prefix`` or, if a concurrent test session runs that cluster, the first free of prefix+b, +c, ..."""
    for candidate in [prefix] + [prefix + suffix for suffix in "bcdefg"]:
        if not Cluster.prefix_in_use(candidate):
            return candidate
    raise LabError(f"all lab prefixes {prefix}* are in use by other processes")


def _session_cluster(name: str, workdir: Path, net: SafetyNet) -> Iterator[Cluster]:
    """Start the named cluster, yield it, and always stop it."""
    if os.environ.get("HAMAIL_NO_CLUSTER"):
        pytest.fail(f"{name}: this run promises no cluster (HAMAIL_NO_CLUSTER is set, e.g. by make test-fast)")
    require_root()
    spec = dict(SPECS[name], prefix=free_prefix(SPECS[name]["prefix"]))
    cluster = Cluster(workdir / name, **spec, checkout=CHECKOUT)
    net.add(cluster)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        net.discard(cluster)


@pytest.fixture(scope="session")
def cluster1(lab_workdir, lab_safety_net) -> Iterator[Cluster]:
    """A running 1-node cluster (prefix hm1, 198.51.100.11), shared by the whole session."""
    yield from _session_cluster("cluster1", lab_workdir, lab_safety_net)


@pytest.fixture(scope="session")
def cluster3(lab_workdir, lab_safety_net) -> Iterator[Cluster]:
    """A running 3-node cluster (prefix hm3, 192.0.2.11-13), shared by the whole session."""
    yield from _session_cluster("cluster3", lab_workdir, lab_safety_net)


@pytest.fixture
def fenced_cluster3(tmp_path, lab_safety_net) -> Iterator[tuple[Cluster, BmcNetwork]]:
    """A 3-node cluster with stonith-enabled=true, a BMC per node and one fence_ipmi device per node (the
    devices started): (cluster, bmcs). Fencing powers a node off and on through its BMC for real."""
    from hamail.pacemaker.crmmon import parse_crm_mon
    require_root()
    prefix = free_prefix("hmf")
    cluster = Cluster(tmp_path / "lab", 3, prefix, "192.0.2", stonith_enabled=True, checkout=CHECKOUT)
    bmcs = BmcNetwork(cluster)
    lab_safety_net.add(cluster)  # torn down on SIGTERM/atexit too
    try:
        cluster.start()
        bmcs.start()
        config = tmp_path / "fence.crm"
        config.write_text(bmcs.crm_config())
        loaded = cluster.run("node1", ["crm", "configure", "load", "update", str(config)], timeout=120)
        if loaded.returncode != 0:
            raise LabError(f"loading the fence devices failed: {loaded.stderr}")
        cluster.wait_for(lambda: {"fence-node1", "fence-node2", "fence-node3"} <= {
            r.id for r in parse_crm_mon(cluster.crm_mon_xml("node1")).resources if r.active} or None,
            60, "the fence devices to start")
        yield cluster, bmcs
    finally:
        bmcs.stop()
        # The BMCs booted nodes from their own processes: reload the state they recorded.
        Cluster.load(cluster.workdir).stop(force=True)
        lab_safety_net.discard(cluster)
