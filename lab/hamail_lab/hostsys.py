# SPDX-License-Identifier: GPL-2.0-or-later
"""Host-side helpers: commands, processes, network namespaces, links and mounts."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

NETNS_DIR = Path("/run/netns")
# Present while /run/netns is a mount point that a lab created (``ip netns add``
# bind-mounts the directory onto itself the first time); the last lab to stop removes both.
NETNS_MOUNT_MARKER = Path("/run/hamail-lab.netns-mount")

T = TypeVar("T")


class LabError(RuntimeError):
    """Anything in the lab that did not work, with an explanation for the test log."""


def wait_for(predicate: Callable[[], T], timeout: float, what: str, *,
             interval: float = 0.1, max_interval: float = 2.0) -> T:
    """Poll ``predicate`` with growing pauses until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except LabError as exc:
            last_error, result = exc, None
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f" (last error: {last_error})" if last_error else ""
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, max_interval)


def sh(argv: Sequence[str], *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a host command (argv list), capture text output, raise LabError on failure if ``check``."""
    proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed with {proc.returncode}: {proc.stderr.strip()}")
    return proc


def run_killable(argv: Sequence[str], *, input: str | None, env: dict, timeout: float,
                 cwd: str = "/") -> subprocess.CompletedProcess:
    """Run argv in its own process group, killing the whole group (e.g. nsenter's child) on timeout."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_group(proc.pid)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(exc.cmd, timeout, out, err) from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def kill_group(pgid: int) -> None:
    """SIGKILL a process group, ignoring one that has gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------- processes

def start_time(pid: int) -> int | None:
    """Return the kernel start time of ``pid`` (clock ticks), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """True if ``pid`` still runs and is the same process (same start time)."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def ns_inode(path: str | Path) -> int | None:
    """Inode of a namespace file (/run/netns/X or /proc/PID/ns/net), None if absent."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_netns(inode: int) -> list[int]:
    """All host PIDs whose network namespace has this inode."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and ns_inode(f"/proc/{entry}/ns/net") == inode:
            found.append(int(entry))
    return found


def nspid_chain(pid: int) -> list[int]:
    """The NSpid line of /proc/PID/status (host pid first, innermost last)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def find_ns_init(parent: int) -> int | None:
    """The child of ``parent`` that is PID 1 of a new PID namespace (unshare -p -f's child)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(parent):
            chain = fields.get("NSpid", "").split()
            if len(chain) > 1 and chain[-1] == "1":
                return int(entry)
    return None


def kill_netns_processes(inode: int, timeout: float = 30) -> None:
    """SIGKILL every process in a network namespace (PID-namespace inits first) and wait until none is left."""
    def sweep() -> bool:
        """Kill what is left; True once nothing (but zombies) remains."""
        pids = pids_in_netns(inode)
        chains = {p: nspid_chain(p) for p in pids}  # read once: a process may exit between two reads
        inits = [p for p, chain in chains.items() if len(chain) > 1 and chain[-1] == 1]
        for pid in inits + pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not [p for p in pids_in_netns(inode) if start_time(p) is not None]
    wait_for(sweep, timeout, "the processes of a lab network namespace to die", interval=0.05)


# ---------------------------------------------------------------- network

def netns_names() -> list[str]:
    """Names of the network namespaces known to ``ip netns``."""
    proc = sh(["ip", "-j", "netns", "list"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    return [entry["name"] for entry in json.loads(proc.stdout)]


def link_names() -> list[str]:
    """Names of the host's network interfaces."""
    return [entry["ifname"] for entry in json.loads(sh(["ip", "-j", "link", "show"]).stdout)]


def is_mountpoint(path: Path) -> bool:
    """True if ``path`` is a mount point in this process's mount namespace."""
    target = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4] == target for line in handle)


def netns_add(name: str) -> None:
    """``ip netns add``, remembering (by marker file) when that made /run/netns a mount point."""
    if not is_mountpoint(NETNS_DIR) and not NETNS_MOUNT_MARKER.exists():
        NETNS_MOUNT_MARKER.write_text("created by hamail_lab: umount /run/netns when it is empty\n")
    sh(["ip", "netns", "add", name])


def netns_release_dir() -> None:
    """Unmount /run/netns again if a lab made it a mount point and no namespace is left in it."""
    if not NETNS_MOUNT_MARKER.exists():
        return
    try:
        empty = not any(NETNS_DIR.iterdir())
    except OSError:
        empty = True
    if not empty:
        return
    if is_mountpoint(NETNS_DIR):
        sh(["umount", str(NETNS_DIR)], check=False)
    NETNS_MOUNT_MARKER.unlink(missing_ok=True)


def call_in_netns(name: str, fn: Callable[..., T], *args, timeout: float = 600) -> T:
    """fn(*args) on a thread of its own inside the named network namespace, its result or its exception: the
    calling thread stays where it is (a drill's main thread keeps the host's namespace for link commands)."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            enter_netns(name)
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            outcome["error"] = exc
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise LabError(f"{getattr(fn, '__name__', fn)} in {name} did not finish within {timeout:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def enter_netns(name: str) -> None:
    """Move the calling thread (network namespaces are per thread) into the named network namespace."""
    import ctypes
    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, clone_newnet) != 0:
            raise LabError(f"setns into {name}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def delete_links(names: Iterable[str]) -> None:
    """Delete host interfaces by name, ignoring those that are already gone."""
    present = set(link_names())
    for name in names:
        if name in present:
            sh(["ip", "link", "del", name], check=False)


# ---------------------------------------------------------------- prefix ownership
# Two test sessions on one machine must not tear down each other's clusters: the
# process that starts a cluster records itself in /run/hamail-lab/<prefix>.owner.
# A record whose process has ended (crash, or the CLI's ``up`` that has exited) is stale.
OWNER_DIR = Path("/run/hamail-lab")


def _owner_path(prefix: str) -> Path:
    """The ownership record of a prefix."""
    return OWNER_DIR / f"{prefix}.owner"


def prefix_owner(prefix: str) -> dict | None:
    """The live process (other than this one) that owns ``prefix``, or None if free or stale."""
    try:
        record = json.loads(_owner_path(prefix).read_text())
    except (OSError, ValueError):
        return None
    if record.get("pid") == os.getpid() or not alive(record.get("pid", 0), record.get("started")):
        return None
    return record


def claim_prefix(prefix: str, workdir: Path) -> None:
    """Record this process as the owner of ``prefix``; LabError if another live process owns it."""
    for _attempt in range(5):
        OWNER_DIR.mkdir(exist_ok=True)
        try:
            fd = os.open(OWNER_DIR, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # removed by a concurrent release_prefix: try again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            owner = prefix_owner(prefix)
            if owner is not None:
                raise LabError(f"lab prefix {prefix} is in use by pid {owner['pid']} (workdir {owner['workdir']}); "
                               "choose another prefix or stop that cluster")
            record = {"pid": os.getpid(), "started": start_time(os.getpid()), "workdir": str(workdir)}
            try:
                _owner_path(prefix).write_text(json.dumps(record) + "\n")
            except FileNotFoundError:
                continue
            return
        finally:
            os.close(fd)
    raise LabError(f"could not record ownership of lab prefix {prefix} in {OWNER_DIR}")


def release_prefix(prefix: str) -> None:
    """Forget the owner of ``prefix`` (and the ownership directory once it is empty)."""
    _owner_path(prefix).unlink(missing_ok=True)
    try:
        OWNER_DIR.rmdir()
    except OSError:  # not empty (another lab runs) or already gone
        pass
