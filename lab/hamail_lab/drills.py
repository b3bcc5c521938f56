# SPDX-License-Identifier: GPL-2.0-or-later
"""Drills on the running mail lab: break it the ways real clusters break and check nothing was lost.

While a drill runs, ``Invariants`` watches from the host, continuously: a mail is submitted to the mail VIP
every second (only those the server ACCEPTED count), a row is written to Galera through the database VIP
every 0.2 s (only those whose COMMIT returned count), and each VIP is checked on every node's interface
several times a second: two nodes that both hold a VIP on a live link are a violation at the moment it
happens, not only at the end. After the failure the drill waits until the stack answers again (recovery
time: failure injected -> Pacemaker runs everything and SMTP, IMAP and the database answer through the
VIPs), then every accepted mail must be readable over IMAP and every acknowledged row present.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from . import hostsys, mailclient, stacks
from .bmc import BmcNetwork
from .cluster import STATE_FILE, Cluster
from .hostsys import LabError, call_in_netns, enter_netns
from .mailstack import LAB_USER, MailStack

DRILLS = ("kill-service", "standby", "power-off", "network-cut", "power-loss", "bmc-silent", "never-returns")
CHECKOUT = Path(__file__).resolve().parents[2]
BMC_SILENT_S = 30.0  # how long the bmc-silent drill keeps the BMC away (fencing fails and is retried meanwhile)
MAIL_WAIT = 180.0  # deferred mail is retried every 10 s (main.cf): a few minutes covers any failover


@dataclasses.dataclass
class Report:
    """What one drill did and found."""

    name: str
    target: str
    stack: str = "galera"
    recovery_s: float | None = None
    mails_accepted: int = 0
    mails_missing: int = 0
    writes_acked: int = 0
    writes_missing: int = 0
    moves: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    waits: list[str] = dataclasses.field(default_factory=list)  # what recovery waited for, as it changed

    @property
    def passed(self) -> bool:
        """True when the stack recovered and no invariant was violated."""
        return self.recovery_s is not None and not self.violations

    def lines(self) -> list[str]:
        """The report as text lines for people."""
        out = [f"drill {self.name} on {self.target}: {'PASSED' if self.passed else 'FAILED'}",
               f"  recovery: {self.recovery_s:.1f} s" if self.recovery_s is not None else "  recovery: none",
               f"  mails accepted {self.mails_accepted}, missing after the drill {self.mails_missing}",
               f"  database rows acknowledged {self.writes_acked}, missing after the drill {self.writes_missing}"]
        out += [f"  placement: {move}" for move in self.moves]
        out += [f"  waiting: {wait}" for wait in self.waits]
        out += [f"  VIOLATION: {text}" for text in self.violations]
        return out


class Invariants:
    """Background traffic and watchers for the duration of a drill (a context manager)."""

    def __init__(self, cluster: Cluster, stack: MailStack) -> None:
        self.cluster = cluster
        self.stack = stack
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.accepted: set[str] = set()
        self.acked: set[int] = set()
        self.violations: list[str] = []
        self.moves: list[str] = []
        self.start = time.monotonic()
        watchers = [self._watch_vips, self._send_mail, self._write_rows, self._watch_placement]
        if stack.exclusive_mount:
            watchers.append(self._watch_mounts)
        self.threads = [threading.Thread(target=self._in_client_netns, args=(fn,), daemon=True) for fn in watchers]

    def __enter__(self) -> "Invariants":
        call_in_netns(self.cluster.client_netns, self._table)
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _in_client_netns(self, body: Callable[[], None]) -> None:
        """Run a watcher thread from the lab's client namespace (network namespaces are per thread)."""
        enter_netns(self.cluster.client_netns)
        body()

    def _stamp(self) -> str:
        return f"+{time.monotonic() - self.start:.1f}s"

    def _connect(self):
        """A PyMySQL connection to the database VIP as the lab user."""
        import pymysql
        return pymysql.connect(host=self.stack.db_vip, user="lab", password=self.stack.db_password(),
                               database="labdb", connect_timeout=2, read_timeout=5, write_timeout=5,
                               autocommit=True)

    def _table(self) -> None:
        """Create the table the writer fills (empty for each drill)."""
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS acked (id INT PRIMARY KEY)")
                cur.execute("DELETE FROM acked")
        finally:
            conn.close()

    def _holders(self) -> dict[str, list[str]]:
        """{vip: nodes that carry it on eth0 while their link is up} (they could answer for it; a powered-off
        node's NIC is down without addresses). One `ip addr` per node for both VIPs."""
        found: dict[str, list[str]] = {vip: [] for vip in (self.stack.mail_vip, self.stack.db_vip)}
        for node in self.cluster.nodes:
            if not self.cluster.link_up(node):
                continue
            addrs = subprocess.run(["ip", "-n", self.cluster.netns(node), "-o", "-4", "addr", "show", "dev", "eth0"],
                                   capture_output=True, text=True, check=False, timeout=10).stdout
            for vip, holders in found.items():
                if f" {vip}/" in addrs:
                    holders.append(node)
        return found

    def _watch_vips(self) -> None:
        seen: dict[str, list[str]] = {}
        while not self.stop_event.wait(0.25):
            for vip, holders in self._holders().items():
                # One line per episode: when the set of holders changes, not at every look.
                if len(holders) > 1 and holders != seen.get(vip):
                    with self.lock:
                        self.violations.append(f"{self._stamp()} {vip} held by {', '.join(holders)} at once")
                seen[vip] = holders

    def mount_holders(self) -> list[str]:
        """The running nodes whose mount namespace has the stack's exclusive mount point mounted (read from each
        node's init in /proc: no process is started in the nodes). The lab's state file says where each node's
        init runs: a BMC's power-on boots nodes from another process."""
        try:
            inits = json.loads((self.cluster.workdir / STATE_FILE).read_text()).get("inits", {})
        except (OSError, ValueError):
            return []
        holders = []
        for node, (pid, started) in sorted(inits.items()):
            if not hostsys.alive(pid, started):
                continue
            try:
                mounts = Path(f"/proc/{pid}/mounts").read_text()
            except OSError:
                continue  # died between the two looks: powered off
            if any(line.split()[1] == self.stack.exclusive_mount for line in mounts.splitlines()):
                holders.append(node)
        return holders

    def _watch_mounts(self) -> None:
        seen: list[str] = []
        while not self.stop_event.wait(0.25):
            holders = self.mount_holders()
            if len(holders) > 1 and holders != seen:
                with self.lock:
                    self.violations.append(f"{self._stamp()} {self.stack.exclusive_mount} mounted on "
                                           f"{', '.join(holders)} at once")
            seen = holders

    def _send_mail(self) -> None:
        while not self.stop_event.wait(1.0):
            try:
                token = mailclient.send(self.stack.mail_vip, LAB_USER, subject="drill", timeout=5)
            except OSError:
                continue  # not accepted: the sender would retry; nothing was promised
            with self.lock:
                self.accepted.add(token)

    def _write_rows(self) -> None:
        import pymysql
        conn, next_id = None, 1
        while not self.stop_event.wait(0.2):
            try:
                if conn is None:
                    conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked (id) VALUES (%s)", (next_id,))
                with self.lock:
                    self.acked.add(next_id)
                next_id += 1
            except pymysql.err.IntegrityError:
                next_id += 1  # committed but its acknowledgement was lost: never counted
            except pymysql.err.MySQLError:
                if conn is not None:
                    conn.close()
                conn = None

    def _watch_placement(self) -> None:
        last: dict[str, str] = {}
        while not self.stop_event.wait(2.0):
            try:
                now = placement(self.cluster, settled=True)
            except LabError:
                continue
            for rsc in self.stack.vip_resources:
                if now.get(rsc) != last.get(rsc):
                    with self.lock:
                        self.moves.append(f"{self._stamp()} {rsc} on {now.get(rsc) or 'no node'}")
            last = now

    def check_data(self, report: Report) -> None:
        """Every accepted mail readable over IMAP, every acknowledged row present (waits for queued mail)."""
        report.mails_accepted, report.writes_acked = len(self.accepted), len(self.acked)
        user, password = self.stack.credentials()
        deadline = time.monotonic() + MAIL_WAIT
        missing = set(self.accepted)
        while missing and time.monotonic() < deadline:
            try:
                missing = self.accepted - mailclient.tokens(self.stack.mail_vip, user, password)
            except Exception as exc:  # noqa: BLE001 - imaplib's errors are not OSErrors; shown in the report
                missing = missing or {f"<IMAP failed: {exc}>"}
            if missing:
                time.sleep(2)
        report.mails_missing = len(missing)
        if missing:
            report.violations.append(f"{len(missing)} accepted mail(s) not in the mailbox after {MAIL_WAIT:.0f} s")
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM acked")
                present = {row[0] for row in cur.fetchall()}
        finally:
            conn.close()
        lost = self.acked - present
        report.writes_missing = len(lost)
        if lost:
            report.violations.append(f"{len(lost)} acknowledged row(s) lost, e.g. {sorted(lost)[:5]}")
        report.violations += self.violations
        report.moves = list(self.moves)


def placement(cluster: Cluster, settled: bool = False) -> dict[str, str]:
    """{resource: node} for the stack's active primitives (clone instances not included). ``settled``: a view
    without a DC and quorum (a node that has just booted, before it has the cluster's status) is a LabError,
    not "runs nowhere"."""
    from hamail.pacemaker.crmmon import parse_crm_mon
    status = parse_crm_mon(cluster.crm_mon_xml())
    if settled and not (status.dc and status.have_quorum):
        raise LabError("this node's view has no DC with quorum yet")
    return {r.id: r.nodes[0] for r in status.resources if r.active and r.nodes and r.clone is None}


def stack_ready(cluster: Cluster, stack: MailStack | None = None) -> bool:
    """The lab's stack runs in full as its ``ready`` defines it (False while no node answers)."""
    from hamail.pacemaker.crmmon import parse_crm_mon
    try:
        status = parse_crm_mon(cluster.crm_mon_xml())
    except LabError:
        return False
    return (stack or stacks.load(cluster)).ready(status)


def rejoined(cluster: Cluster, stack: MailStack, node: str) -> bool:
    """The stack runs in full and a node that was away serves again."""
    from hamail.pacemaker.crmmon import parse_crm_mon
    try:
        status = parse_crm_mon(cluster.crm_mon_xml())
    except LabError:
        return False
    return stack.ready(status) and stack.rejoined(status, node)


def not_answering(stack: MailStack) -> str | None:
    """Why the stack does not answer through its VIPs (SMTP accepts, IMAP logs in, the database answers), None
    when it does."""
    step = "SMTP"
    try:
        mailclient.send(stack.mail_vip, LAB_USER, subject="recovery check", timeout=3)
        step = "IMAP"
        mailclient.tokens(stack.mail_vip, *stack.credentials(), timeout=3)
        step = "MariaDB"
        import pymysql
        conn = pymysql.connect(host=stack.db_vip, user="lab", password=stack.db_password(), database="labdb",
                               connect_timeout=2, read_timeout=3)
        conn.close()
    except Exception as exc:  # noqa: BLE001 - any failure means not answering yet; the reason is shown
        return f"{step}: {exc}"
    return None


class Drill:
    """One drill against the running lab (in the workdir of scripts/lab)."""

    def __init__(self, workdir: Path, name: str, timeout: float = 300.0) -> None:
        if name not in DRILLS:
            raise LabError(f"unknown drill {name!r}; drills are {', '.join(DRILLS)}")
        self.cluster = Cluster.load(workdir)
        self.stack = stacks.load(self.cluster)
        self.bmcs = BmcNetwork(self.cluster)
        self.name = name
        self.timeout = timeout

    def run(self) -> Report:
        """Wait for a healthy stack, inject the failure under the invariants, wait for recovery, check data. The
        calling thread stays in the host's network namespace (the failures act on the host side of the links);
        whatever talks to the cluster's addresses runs on threads in the lab's client namespace."""
        client = self.cluster.client_netns
        self.cluster.wait_for(lambda: stack_ready(self.cluster, self.stack), self.timeout,
                              "a healthy stack before the drill")
        where = placement(self.cluster)
        target = where.get("mail-vip")
        if target is None:
            raise LabError("the mail group runs nowhere: the stack is not healthy")
        if self.name == "never-returns" and target == where.get("db-vip"):
            # The node lost for good is not the one the writer commits on: every acknowledged row is then on a
            # survivor, and the drill can require all of them (an override naming the newest survivor loses none).
            target = next(n for n in self.cluster.nodes if n != target and self.cluster.is_running(n))
        report = Report(self.name, target, self.stack.name)
        with Invariants(self.cluster, self.stack) as inv:
            time.sleep(3)  # traffic before the failure
            injected = time.monotonic()
            since = time.time() - 1
            after = getattr(self, "_" + self.name.replace("-", "_"))(target, since)
            waits: list[str] = []

            def recovered() -> bool | None:
                why = "Pacemaker does not run everything yet" if not stack_ready(self.cluster, self.stack) else \
                    call_in_netns(client, not_answering, self.stack)
                if why and (not waits or not waits[-1].endswith(why)):
                    waits.append(f"+{time.monotonic() - injected:.1f}s after the failure: {why}")
                return None if why else True
            try:
                self.cluster.wait_for(recovered, self.timeout, f"the stack to answer again after {self.name}")
                report.recovery_s = time.monotonic() - injected
            except LabError as exc:
                report.violations.append(str(exc))
            report.waits = waits
            if after is not None:
                after(report)
            time.sleep(3)  # traffic after the recovery
        call_in_netns(client, inv.check_data, report)
        return report

    # ------------------------------------------------------------ the failures
    def _kill_service(self, target: str, since: float) -> Callable[[Report], None]:
        """kill -9 of dovecot's master on the node running the mail group: restarted in place."""
        self.cluster.run(target, ["pkill", "-KILL", "-x", "dovecot"], timeout=10)

        def after(report: Report) -> None:
            where = placement(self.cluster).get("imap")
            if where != target:
                report.violations.append(f"imap was not restarted in place: it runs on {where}, not {target}")
        return after

    def _standby(self, target: str, since: float) -> Callable[[Report], None]:
        """Standby of the node running the mail group, then back online."""
        self._crm(["crm_attribute", "--node", target, "--name", "standby", "--update", "on"])
        self.cluster.wait_for(lambda: placement(self.cluster).get("mail-vip") not in (None, target) or None,
                              self.timeout, "the mail group to leave the standby node")

        def after(report: Report) -> None:
            self._crm(["crm_attribute", "--node", target, "--name", "standby", "--delete"])
            self.cluster.wait_for(lambda: rejoined(self.cluster, self.stack, target) or None,
                                  self.timeout, f"{target} to return from standby")
        return after

    def _power_off(self, target: str, since: float) -> Callable[[Report], None]:
        """Power off the node running the mail group through its BMC: fenced, resources move, node rejoins."""
        # From the client namespace: the BMCs are on the lab's bridge, where the host has no address.
        done = subprocess.run(["ip", "netns", "exec", self.cluster.client_netns, "ipmitool", "-I", "lanplus",
                               "-H", self.bmcs.address, "-p", str(self.bmcs.port(target)), "-U", "admin",
                               "-f", str(self.bmcs.password_file), "chassis", "power", "off"],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise LabError(f"ipmitool power off failed: {done.stderr.strip()}")
        # A BMC answers at once and switches the power a moment later (hamail-vbmc does too): the failure is
        # injected when the machine is off, not when the BMC said yes (else recovery is "measured" before it).
        self.cluster.wait_for(lambda: not Cluster.load(self.cluster.workdir).is_running(target) or None, 60,
                              f"{target} to be off after its BMC's power off")
        return self._fenced_then_rejoined(target, since)

    def _network_cut(self, target: str, since: float) -> Callable[[Report], None]:
        """Cut the link of the node running the mail group: the majority fences it; it rejoins once reconnected."""
        self.cluster.cut_link(target)
        self.cluster.wait_for(lambda: self._fenced(target, since) or None, self.timeout,
                              f"the majority to fence {target}")
        self.cluster.restore_link(target)  # the rebooted node needs its cable back to rejoin
        return self._fenced_then_rejoined(target, since)

    def _power_loss(self, target: str, since: float) -> Callable[[Report], None]:
        """Every node loses power at once and comes back: Galera recovers by itself."""
        for node in self.cluster.nodes:
            self.cluster.kill_node(node)
        for node in self.cluster.nodes:
            self.cluster.start_node(node, wait=False)
        return None

    def _bmc_silent(self, target: str, since: float) -> Callable[[Report], None]:
        """The node running the mail group loses power together with its BMC: fencing cannot succeed, so nothing
        of it may run elsewhere meanwhile; once the BMC answers again the node is fenced, everything moves and the
        node rejoins."""
        self.bmcs.stop_bmc(target)
        self.cluster.kill_node(target)
        found: list[str] = []
        end = time.monotonic() + BMC_SILENT_S
        while time.monotonic() < end:
            where = placement(self.cluster).get("mail-vip")
            if where not in (None, target):
                found.append(f"the mail group ran on {where} while {target} was not fenced (its BMC silent)")
                break
            time.sleep(1)
        if self._fenced(target, since):
            found.append(f"{target} recorded fenced although its BMC did not answer")
        self.bmcs.start_bmc(target)  # the power comes back: the BMC answers, the node stays off until fenced
        rejoined = self._fenced_then_rejoined(target, since)

        def after(report: Report) -> None:
            report.violations += found
            self._clear_fence_device(target)
            rejoined(report)
        return after

    def _never_returns(self, target: str, since: float) -> Callable[[Report], None]:
        """Every node loses power; one never comes back (its power supply is gone, its BMC with it). Fencing it
        fails, so nothing runs; the admin confirms the node is off (stonith_admin --confirm), and Galera still
        waits, saying why, because the lost node was in the last Primary view; the override hamail-galera status
        offers then recovers the cluster on the survivors. At the end the node is repaired and rejoins."""
        self.bmcs.stop_bmc(target)
        for node in self.cluster.nodes:
            self.cluster.kill_node(node)
        survivors = [n for n in self.cluster.nodes if n != target]
        for node in survivors:
            self.cluster.start_node(node, wait=False)
        found: list[str] = []
        said: list[str] = []
        status = self.cluster.wait_for(lambda: self._status_if(lambda s: s.dc and s.have_quorum
                                                               and set(survivors) <= set(s.online_nodes())),
                                       self.timeout, "the survivors to form a quorate partition")
        # Pacemaker may not run anything while the lost node is unfenced: it says so (unclean, fencing failed).
        failed = self.cluster.wait_for(lambda: self._status_if(lambda s: any(
            e.target == target and e.status == "failed" for e in s.fencing)), self.timeout,
            f"a failed fencing of {target} in the history")
        said.append(f"{len(status.online_nodes())} nodes up; {target} "
                    f"{'UNCLEAN' if failed.nodes[target].unclean else 'offline'}, fencing it failed")
        if self._promoted_now() or placement(self.cluster).get("mail-vip"):
            found.append("something ran while the lost node was neither fenced nor confirmed off")
        self._crm(["stonith_admin", "--confirm", target])
        if self.stack.name == "galera":
            self._galera_override(target, found, said)

        def after(report: Report) -> None:
            report.violations += found
            report.waits = said + report.waits
            self.bmcs.start_bmc(target)  # repaired: its BMC answers and the admin powers it on
            done = subprocess.run(["ip", "netns", "exec", self.cluster.client_netns, "ipmitool", "-I", "lanplus",
                                   "-H", self.bmcs.address, "-p", str(self.bmcs.port(target)), "-U", "admin",
                                   "-f", str(self.bmcs.password_file), "chassis", "power", "on"],
                                  capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                report.violations.append(f"ipmitool power on failed: {done.stderr.strip()}")
                return
            self._clear_fence_device(target)
            self.cluster.wait_for(lambda: rejoined(Cluster.load(self.cluster.workdir), self.stack, target) or None,
                                  self.timeout, f"{target} to serve again")
        return after

    def _galera_override(self, target: str, found: list[str], said: list[str]) -> None:
        """Wait until every survivor has reported its position and the agents still wait, saying why in
        crm_mon (db-bootstrap-wait); check that nothing is Promoted meanwhile; then apply the override
        hamail-galera status offers for a survivor."""
        survivors = [n for n in self.cluster.nodes if n != target]

        def waiting_with_all_reported() -> dict | None:
            doc = self._galera_status(survivors[0])
            rows = {row["node"]: row for row in doc["nodes"]}
            if any(rows[n]["seqno"] is None for n in survivors) or doc["decision"]["action"] != "wait":
                return None
            why = self._status_if(lambda s: [s.node_attribute(n, "db-bootstrap-wait") for n in survivors
                                             if s.node_attribute(n, "db-bootstrap-wait")])
            return {"doc": doc, "why": why} if why else None
        seen = self.cluster.wait_for(waiting_with_all_reported, self.timeout,
                                     "every survivor's position reported and Galera waiting, saying why")
        said.append(f"Galera waits, crm_mon shows db-bootstrap-wait: {seen['why'][0]}")
        end = time.monotonic() + 5  # a wait that holds, not a passing moment
        while time.monotonic() < end:
            if self._promoted_now():
                found.append("Galera bootstrapped without the override although the lost node was in the last "
                             "Primary view")
                return
            time.sleep(0.5)
        offered = [o for o in self._galera_status(survivors[0])["overrides"] if o["allowed"] and o["node"] != target]
        if not offered:
            raise LabError(f"hamail-galera status offers no override for a survivor: {seen['doc']['overrides']}")
        chosen = offered[0]
        said.append(f"override: {chosen['command']} (risks: {'; '.join(chosen['risks']) or 'none named'})")
        applied = self.cluster.run(survivors[0], ["sh", "-c", chosen["command"]], timeout=60)
        if applied.returncode != 0:
            raise LabError(f"{chosen['command']} failed: {applied.stderr.strip()}")

    def _galera_status(self, node: str) -> dict:
        """`hamail-galera status db --json` of the checkout, run on a node."""
        import json
        done = self.cluster.run(node, ["/usr/bin/python3", str(CHECKOUT / "sbin" / "hamail-galera"), "status", "db",
                                       "--json"], timeout=60)
        try:
            return json.loads(done.stdout)
        except ValueError:
            raise LabError(f"hamail-galera status on {node} failed ({done.returncode}): {done.stderr.strip()}") \
                from None

    # ------------------------------------------------------------ helpers
    def _clear_fence_device(self, target: str) -> None:
        """A fence device that had to start while its BMC was dead failed its start, which bans it until the
        failure is cleared (the soak found it: the stack never counted as whole again). Once the BMC answers,
        the admin clears it, as for any resource whose cause of failure is fixed."""
        self._crm(["crm_resource", "--cleanup", "--resource", f"fence-{target}"])

    def _status_if(self, predicate: Callable):
        """crm_mon's status when ``predicate`` holds for it, else None (also None while no node answers)."""
        from hamail.pacemaker.crmmon import parse_crm_mon
        try:
            status = parse_crm_mon(self.cluster.crm_mon_xml())
        except LabError:
            return None
        result = predicate(status)
        return (status if result is True else result) or None

    def _promoted_now(self) -> bool:
        """True when some Galera instance is Promoted."""
        status = self._status_if(lambda s: True)
        return status is not None and any(r.role == "Promoted" for r in status.instances("db-clone"))

    def _crm(self, argv: list[str]) -> None:
        """Run a Pacemaker command on a running node; LabError when it fails."""
        done = self.cluster.run(self.cluster.first_running(), argv, timeout=60)
        if done.returncode != 0:
            raise LabError(f"{' '.join(argv)}: {done.stderr.strip()}")

    def _fenced(self, target: str, since: float) -> bool:
        from hamail.pacemaker.crmmon import parse_crm_mon
        try:
            return parse_crm_mon(self.cluster.crm_mon_xml()).was_fenced(target, since=since)
        except LabError:
            return False

    def _fenced_then_rejoined(self, target: str, since: float) -> Callable[[Report], None]:
        def after(report: Report) -> None:
            if not self._fenced(target, since):
                report.violations.append(f"{target} was never recorded fenced")
            def booted() -> Cluster | None:
                now = Cluster.load(self.cluster.workdir)  # the BMC boots the node from another process
                return now if now.is_running(target) else None
            self.cluster = self.cluster.wait_for(booted, self.timeout, f"{target} powered on again by its BMC")
            # Pacemaker says when the node is back (its own view of membership), not this process's record of
            # which pid boots where: the BMC boots nodes from another process.
            self.cluster.wait_for(lambda: rejoined(Cluster.load(self.cluster.workdir), self.stack, target) or None,
                                  self.timeout, f"{target} to serve again")
        return after


def record(report: Report, results: Path) -> None:
    """Put the drill's row into the Drills section of bench/RESULTS.md (one row per drill, the latest run)."""
    header = "## Drills (make drill: failure injected -> the stack answers again through its VIPs)"
    if report.stack != "galera":
        header = (f"## Drills on the {report.stack} stack (make lab STACK={report.stack}; make drill: failure "
                  "injected -> the stack answers again through its VIP)")
    table = "| drill | target | recovery s | mails accepted / missing | rows acknowledged / missing | result |"
    rule = "|---|---|---|---|---|---|"
    row = (f"| {report.name} | {report.target} | "
           f"{'-' if report.recovery_s is None else f'{report.recovery_s:.1f}'} | "
           f"{report.mails_accepted} / {report.mails_missing} | {report.writes_acked} / {report.writes_missing} | "
           f"{'passed' if report.passed else 'FAILED'} ({time.strftime('%Y-%m-%d %H:%M')}) |")
    text = results.read_text() if results.exists() else ""
    if header not in text:
        text = text.rstrip("\n") + f"\n\n{header}\n\n{table}\n{rule}\n"
    before, _, section = text.partition(header)
    lines = section.split("\n")
    rest_at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    rows = [line for line in lines[:rest_at] if line.startswith("| ") and not line.startswith(("| drill ", "|---"))]
    rows = [r for r in rows if not r.startswith(f"| {report.name} |")] + [row]
    rows.sort(key=lambda r: DRILLS.index(r.split("|")[1].strip()) if r.split("|")[1].strip() in DRILLS else 99)
    results.write_text(before + header + "\n\n" + table + "\n" + rule + "\n" + "\n".join(rows) + "\n"
                       + ("\n" + "\n".join(lines[rest_at:]) if rest_at < len(lines) else ""))

