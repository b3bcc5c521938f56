# SPDX-License-Identifier: GPL-2.0-or-later
"""STONITH for real in the lab: Pacemaker fences a lost node through fence_ipmi and a hamail-vbmc whose
power commands kill and boot that node's namespaces; the node comes back and rejoins."""

import time

from hamail_lab import Cluster
from hamail.pacemaker.crmmon import parse_crm_mon


def test_a_cut_off_node_is_fenced_through_ipmi_and_rejoins(fenced_cluster3):
    cluster, bmcs = fenced_cluster3
    started = time.time() - 5
    old_init = cluster.init_pid("node3")
    cluster.cut_link("node3")

    def fenced():
        status = parse_crm_mon(cluster.crm_mon_xml("node1"))
        return status if status.was_fenced("node3", since=started) else None
    status = cluster.wait_for(fenced, 120, "node1/node2 to fence node3")
    event = next(e for e in status.fencing if e.target == "node3" and e.succeeded)
    assert event.action == "reboot" and event.delegate in ("node1", "node2")
    # The BMC really power-cycled node3: a new init process, started by the BMC's "cycle"/"on" after its POST.
    def rebooted():
        now = Cluster.load(cluster.workdir)
        return now if now.is_running("node3") and now.init_pid("node3") != old_init else None
    fresh = cluster.wait_for(rebooted, 60, "node3 to boot again")
    log = (bmcs.dir / "node3.log").read_text()
    assert "power off" in log and "power on" in log
    fresh.restore_link("node3")
    online = fresh.wait_online(120)
    assert sorted(online.online()) == ["node1", "node2", "node3"]
    # The password never reached the CIB: only the script that reads it.
    cib = cluster.run("node1", ["cibadmin", "-Q"]).stdout
    assert bmcs.password_file.read_text().strip() not in cib and "password_script" in cib
