# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:Filesystem on a network filesystem whose server dies: sshfs over a private sshd on 127.0.0.1.

Stopping the server's session processes (SIGSTOP) leaves the mount in place with every request to it
waiting forever, as a hard NFS mount does when its server is gone (this kernel has no NFS; FUSE waits the
same way: a process whose request reached the server cannot even be killed). The agent must still answer
monitor within its timeout and stop the resource within its timeout.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from agent_support import assert_clean, exit_reason, mounted, sh, wait_for
from hamail.system.runner import CommandRunner, CommandTimeout

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for mounts")

SSHD_CONFIG = """\
ListenAddress 127.0.0.1:{port}
HostKey {work}/host_key
AuthorizedKeysFile {work}/authorized_keys
PidFile {work}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""
# sshfs (run by mount(8) as mount.fuse.sshfs) daemonizes, so its pid is nobody's child. The ssh transport it
# starts is this script, which records its own pid before becoming ssh: the process to end to free the mount.
SSH_TRANSPORT = """\
#!/bin/sh
echo $$ >> {work}/transport.pids
exec ssh "$@"
"""


def _free_tcp_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _state(pid: int) -> str:
    """The one-letter state of a process ('' once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _reaped(pid: int) -> bool:
    """Reap our child pid if it has exited; True once it is gone."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


class SshfsServer:
    """A private sshd serving one export directory over SFTP, which can be made to stop answering."""

    def __init__(self, work) -> None:
        self.work = work
        self.export = work / "export"
        self.export.mkdir()
        self.port = _free_tcp_port()
        self.procs = []  # processes the test started that may get stuck in the mount
        self.orphans = []  # pids of our children that a CommandRunner left behind stuck in the mount
        for key in ("host_key", "client_key"):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", work / key)
        (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
        config = work / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=self.port, work=work))
        self.transport = work / "ssh-transport"
        self.transport.write_text(SSH_TRANSPORT.format(work=work))
        self.transport.chmod(0o755)
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        with open(work / "sshd.log", "w") as log:
            self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        if not wait_for(self._listening, timeout=10):
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError(f"sshd did not listen on {self.port}: {(work / 'sshd.log').read_text()}")

    def _listening(self) -> bool:
        import socket
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def params(self, directory) -> dict:
        """The Filesystem parameters of a mount of the export."""
        options = (f"port={self.port},IdentityFile={self.work}/client_key,StrictHostKeyChecking=no,"
                   f"UserKnownHostsFile=/dev/null,BatchMode=yes,ssh_command={self.transport}")
        return {"device": f"root@127.0.0.1:{self.export}", "directory": str(directory), "fstype": "fuse.sshfs",
                "options": options}

    def sessions(self) -> list:
        """The pids serving connections (children of the listening sshd)."""
        found = sh("pgrep", "-P", str(self.proc.pid), check=False).stdout.split()
        return [int(p) for p in found] + [int(c) for p in found
                                          for c in sh("pgrep", "-P", p, check=False).stdout.split()]

    def transports(self) -> list:
        """The pids of the ssh clients our mounts started (recorded by SSH_TRANSPORT)."""
        try:
            return [int(p) for p in (self.work / "transport.pids").read_text().split()]
        except FileNotFoundError:
            return []

    def die(self) -> None:
        """Stop answering: freeze every session process (the connection stays open, nothing comes back)."""
        sessions = self.sessions()
        assert sessions, "no sshd session serves the mount"
        for pid in sessions:
            os.kill(pid, signal.SIGSTOP)
        # SIGSTOP takes effect asynchronously: until every session is stopped, a request might still be answered.
        assert wait_for(lambda: all(_state(pid) in ("T", "") for pid in sessions), timeout=5), \
            {pid: _state(pid) for pid in sessions}

    def cut(self) -> None:
        """End the mounts' ssh transports (sshfs then exits, which aborts its FUSE connection and frees every
        request stuck in it), then end and reap what the test left stuck there."""
        for pid in self.transports():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            proc.kill()
            proc.wait(10)
        for pid in self.orphans:
            assert wait_for(lambda: _reaped(pid), timeout=10), f"pid {pid} is still stuck in the mount"

    def stop(self) -> None:
        """Thaw and end the server's processes."""
        for pid in self.sessions():
            for number in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, number)
                except ProcessLookupError:
                    pass
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def server(tmp_path):
    """A running SshfsServer; afterwards no mount, sshfs client or stuck process of it is left."""
    work = tmp_path / "sshfs"
    work.mkdir()
    srv = SshfsServer(work)
    point = tmp_path / "mnt"
    point.mkdir()
    srv.point = point
    try:
        yield srv
    finally:
        try:
            if mounted(point):
                sh("umount", "-c", "-l", point, check=False)
            srv.cut()
        finally:
            srv.stop()


def test_monitor_and_stop_stay_bounded_when_the_server_dies(fs, server):
    params = server.params(server.point)
    assert fs("start", **params).returncode == 0 and mounted(server.point)
    for level in ("0", "20"):
        assert fs("monitor", env={"OCF_CHECK_LEVEL": level}, **params).returncode == 0
    (server.point / "data").write_text("written before the server died\n")

    server.die()
    # A reader that gets stuck in the mount, as applications on the node would.
    reader = subprocess.Popen(["cat", str(server.point / "data")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    server.procs.append(reader)  # ended by the fixture once the transport is cut
    meta = {"timeout": "6000"}
    start = time.monotonic()
    result = fs("monitor", meta=meta, env={"OCF_CHECK_LEVEL": "0"}, **params)
    assert result.returncode == 0 and time.monotonic() - start < 6  # depth 0 reads only mountinfo

    start = time.monotonic()
    result = fs("monitor", meta=meta, env={"OCF_CHECK_LEVEL": "20"}, **params)
    assert result.returncode == 1 and time.monotonic() - start < 6, result.stderr
    assert "did not finish before the monitor timeout" in exit_reason(result)
    assert_clean(result)

    start = time.monotonic()
    result = fs("stop", meta={"timeout": "10000"}, **params)
    assert result.returncode == 0 and time.monotonic() - start < 10, result.stderr
    assert not mounted(server.point)
    assert_clean(result)
    assert fs("monitor", **params).returncode == 7


def test_a_command_stuck_in_the_kernel_is_left_behind_at_the_deadline(server):
    params = server.params(server.point)
    sh("mount", "-t", params["fstype"], "-o", params["options"], params["device"], server.point)
    assert mounted(server.point)
    server.die()
    # A name never looked up is in no cache (the kernel's dentries, sshfs's own): stat has to ask the dead
    # server and waits where even SIGKILL cannot reach it.
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="stuck in the kernel") as stuck:
        CommandRunner().run(["stat", str(server.point / "never-looked-up")], timeout=1.0)
    assert time.monotonic() - start < 3
    pid = int(re.search(r"pid (\d+)", str(stuck.value)).group(1))
    server.orphans.append(pid)  # reaped by the fixture once the transport is cut
    assert _state(pid) == "D"  # killed, yet still waiting in the kernel


def test_refuse_network_fs_refuses_a_reachable_sshfs_export(fs, server):
    """refuse_network_fs keeps a network filesystem off the path even while its server works."""
    params = server.params(server.point)
    result = fs("start", refuse_network_fs="true", **params)
    assert result.returncode == 6, result.stderr
    assert "must be on local block storage" in exit_reason(result)
    assert not mounted(server.point) and not server.transports()  # it did not even connect
    assert fs("stop", refuse_network_fs="true", **params).returncode == 0
    result = fs("start", **params)  # the control: the same export mounts without the parameter
    assert result.returncode == 0, result.stderr
    assert mounted(server.point) and server.transports()
    assert fs("stop", **params).returncode == 0
    assert not mounted(server.point)
