# SPDX-License-Identifier: GPL-2.0-or-later
"""Galera nodes inside the lab's node namespaces: each node's option file and an empty datadir in its private
directory (the same paths on every node, private contents), for the mail stack and the galera tests."""

from __future__ import annotations

import os
import pwd
import shutil

from .hostsys import LabError

BASE = "/var/lib/hamail-lab-node/galera"  # inside each node: the node's private state directory
RUN = "/run/hamail-galera"


def my_cnf(node: str, address: str, bind: str | None = None) -> str:
    """A Galera node's option file; deliberately no wsrep_cluster_address (the rsync-SST quirk). ``bind``: the
    address clients connect to (default the node's own; 0.0.0.0 when clients come through a VIP)."""
    return f"""[mysqld]
datadir={BASE}/data
socket={RUN}/mysqld.sock
pid-file={RUN}/mysqld.pid
tmpdir={BASE}/tmp
bind-address={bind or address}
port=3306
skip-name-resolve
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=24M
innodb_log_file_size=8M
innodb_flush_log_at_trx_commit=1
performance_schema=OFF
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=hamail
wsrep_node_address={address}
wsrep_node_name={node}
wsrep_sst_method=rsync
wsrep_provider_options="gmcast.listen_addr=tcp://{address}:4567;ist.recv_addr={address}:4568;gcache.size=16M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT8S;evs.install_timeout=PT7.5S;evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S"
"""


def init_node(cluster, node: str, fresh: bool = True, bind: str | None = None) -> None:
    """Write the option file and initialise an empty datadir in the node's private directory."""
    host = cluster.data_dir(node) / "galera"
    if fresh and host.exists():
        shutil.rmtree(host)
    (host / "data").mkdir(parents=True, exist_ok=True)
    (host / "tmp").mkdir(exist_ok=True)
    (host / "my.cnf").write_text(my_cnf(node, cluster.address(node), bind))
    user = pwd.getpwnam("mysql")
    for path in (host, host / "data", host / "tmp"):
        os.chown(path, user.pw_uid, user.pw_gid)
    proc = cluster.run(node, ["mariadb-install-db", f"--defaults-file={BASE}/my.cnf", "--user=mysql",
                              "--wsrep-on=OFF", "--skip-test-db", "--auth-root-authentication-method=socket"],
                       timeout=120)
    if proc.returncode != 0:
        raise LabError(f"mariadb-install-db on {node} failed: {proc.stderr[-2000:]}")
