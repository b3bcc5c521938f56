"""ocf:hamail:Filesystem on a network filesystem whose server dies: sshfs over a private sshd on 127.0.0.1.

Stopping the server's session processes (SIGSTOP) leaves the mount in place with every request to it
waiting forever, as a hard NFS mount does when its server is gone (this kernel has no NFS; FUSE waits the
same way: a process whose request reached the server cannot even be killed). The agent must still answer
monitor within its timeout and stop the resource within its timeout.
"""

import os
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



def _free_tcp_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SshfsServer:
    """A private sshd serving one export directory over SFTP, which can be made to stop answering."""

    def __init__(self, work) -> None:
        self.work = work
        self.export = work / "export"
        self.export.mkdir()
        self.port = _free_tcp_port()
        for key in ("host_key", "client_key"):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", work / key)
        (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
        config = work / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=self.port, work=work))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(work / "sshd.log", "w"))
        wait_for(self._listening, timeout=10)

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
                   "UserKnownHostsFile=/dev/null,BatchMode=yes")
        return {"device": f"root@127.0.0.1:{self.export}", "directory": str(directory), "fstype": "fuse.sshfs",
                "options": options}

    def sessions(self) -> list:
        """The pids serving connections (children of the listening sshd)."""
        found = sh("pgrep", "-P", str(self.proc.pid), check=False).stdout.split()
        return [int(p) for p in found] + [int(c) for p in found
                                          for c in sh("pgrep", "-P", p, check=False).stdout.split()]

    def die(self) -> None:
        """Stop answering: freeze every session process (the connection stays open, nothing comes back)."""
        for pid in self.sessions():
            os.kill(pid, signal.SIGSTOP)

    def stop(self) -> None:
        """Thaw and end everything (the sshfs clients then see the connection close)."""
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
        if mounted(point):
            sh("umount", "-c", "-l", point, check=False)
        # The sshfs client of the export: ending it aborts the FUSE connection and frees stuck requests.
        sh("pkill", "-f", f"sshfs {srv.params(point)['device']}", check=False)
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
    try:
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
    finally:
        reader.kill()


def test_a_command_stuck_in_the_kernel_is_left_behind_at_the_deadline(server):
    params = server.params(server.point)
    sh("mount", "-t", params["fstype"], "-o", params["options"], params["device"], server.point)
    server.die()
    # Past the attribute cache, stat asks the dead server and waits where even SIGKILL cannot reach it.
    time.sleep(1.2)
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="stuck in the kernel"):
        CommandRunner().run(["stat", str(server.point / "x")], timeout=1.0)
    assert time.monotonic() - start < 3
