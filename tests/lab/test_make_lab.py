# SPDX-License-Identifier: GPL-2.0-or-later
"""`make lab`'s promise, as README states it: the Galera mail cluster on three nodes with STONITH through
fence_ipmi and hamail-vbmc; a mail sent to the mail VIP is read back over IMAP; the mailboxes are looked up
in slapd; the pcs script configures the same cluster as the crm file; the quick drills pass with nothing lost
(a service killed -9 is restarted in place; the node running the mail group powered off through its BMC is
fenced, everything moves and the node rejoins); `make lab-down` leaves nothing of the lab on the host."""

from __future__ import annotations

import os
from pathlib import Path

from hamail_lab import Cluster
from hamail_lab.agents import FENCE_DIR, OCF_PROVIDER_DIR
from hamail_lab.drills import stack_ready
from hamail_lab.fixtures import require_root
from hamail_lab.hostsys import call_in_netns, link_names, netns_names
from hamail_lab.mailstack import RESOURCES
from make_lab_support import CHECKOUT, live_configuration, pcs_configuration
from make_lab_support import lab as run_lab

PREFIX = "hmk"  # not make lab's own hml: a lab the user left running is never touched
PCS_SCRIPT = CHECKOUT / "lab" / "stacks" / "galera-mail.pcs.sh"


def rcpt(address: str, recipient: str) -> tuple[int, bytes]:
    """The mail server's answer to RCPT TO for a recipient (smtplib)."""
    import smtplib
    with smtplib.SMTP(address, 25, timeout=10) as smtp:
        smtp.mail("someone@example.org")
        return smtp.rcpt(recipient)


def lab(workdir: Path, *args: str, timeout: float = 420):
    """scripts/lab on this test's lab."""
    return run_lab(workdir, PREFIX, *args, timeout=timeout)


def test_make_lab_runs_the_mail_cluster_drills_pass_and_lab_down_leaves_the_host_as_it_was(tmp_path):
    """up: the whole stack runs; mail round trip; pcs == crm; kill-service and power-off drills; down: nothing left."""
    require_root()
    workdir = tmp_path / "lab"
    up = lab(workdir, "up")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "stonith_admin --reboot node3" in up.stdout  # the command README tells users to try
        cluster = Cluster.load(workdir)
        assert stack_ready(cluster)
        # A mail user: send through the mail VIP, read it back over IMAP (what README tells users to try).
        sent = lab(workdir, "send", timeout=60)
        assert sent.returncode == 0, sent.stderr
        token = sent.stdout.split("token ")[1].strip(")\n")
        read = cluster.wait_for(lambda: (lambda r: r if token[:8] in r.stdout else None)(lab(workdir, "read",
                                                                                              timeout=60)),
                                60, "the mail in the INBOX")
        assert read.returncode == 0 and "1 message(s)" in read.stdout, read.stdout + read.stderr
        # The mailboxes are slapd's: dovecot logged in above with a password only the directory holds (the
        # stack has no passwd-file), and postfix refuses an address the directory does not know.
        assert not (workdir / "shared" / "dovecot" / "users").exists()
        refused = call_in_netns(cluster.client_netns, rcpt, f"{cluster.subnet}.100", "nobody@example.test")
        assert refused[0] == 550 and b"User unknown" in refused[1], refused
        # The pcs script builds, on an empty CIB, the configuration crm loaded into the running cluster.
        live = live_configuration(cluster, PREFIX)
        offline = pcs_configuration(cluster, PCS_SCRIPT, PREFIX)
        assert set(live["primitives"]) >= set(RESOURCES) | {"db"}
        assert offline == live
        # The quick drills: each checks continuously that no VIP is held by two nodes and, after recovery,
        # that every accepted mail is readable and every acknowledged database row present.
        for name in ("kill-service", "power-off"):
            drill = lab(workdir, "--name", name, "--no-record", "drill", timeout=900)
            assert drill.returncode == 0 and "PASSED" in drill.stdout, drill.stdout + drill.stderr[-3000:]
            assert "mails accepted 0" not in drill.stdout and "acknowledged 0" not in drill.stdout, drill.stdout
    finally:
        down = lab(workdir, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    assert not [ns for ns in netns_names() if ns.startswith(f"{PREFIX}-")]
    assert not [link for link in link_names() if link.startswith(f"{PREFIX}-")]
    # The shared directory's mount point and the agents existed only inside the nodes.
    assert not Path("/srv/hamail-lab").exists()
    for path in [OCF_PROVIDER_DIR] + sorted(FENCE_DIR.glob("fence_*")):
        assert not (path.is_symlink() and os.path.realpath(path).startswith(f"{CHECKOUT}/")), path
    mounts = Path("/proc/self/mounts").read_text()
    assert str(workdir) not in mounts
