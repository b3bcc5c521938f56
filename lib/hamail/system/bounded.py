# SPDX-License-Identifier: GPL-2.0-or-later
"""The one bounded-call helper: run a call that must not outlive a deadline.

in_thread: for library calls that may wait longer than we can (pyghmi retrying a silent BMC); the thread
is abandoned at the deadline. in_child: for I/O that may block in the kernel for ever (a dead NFS or FUSE
server): a thread stuck there would keep the whole process, and the pipes pacemaker-execd reads, alive,
so the call runs in a forked child with /dev/null as its stdio, which is SIGKILLed and left behind.
"""

from __future__ import annotations

import os

__all__ = ["TimedOut", "in_thread", "in_child"]


class TimedOut(Exception):
    """The call did not finish before the deadline (it may still be running, abandoned)."""


def in_thread(call, deadline, what: str):
    """call() in a daemon thread; its result or exception, or TimedOut when the deadline comes first."""
    import threading
    box: dict = {}

    def target() -> None:
        """Run the call, keeping its result or exception for the waiting thread."""
        try:
            box["result"] = call()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=what, daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if thread.is_alive():
        raise TimedOut(f"{what} did not finish within the time left")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def in_child(call, deadline, what: str, *, poll_interval: float = 0.05) -> bool:
    """call() in a forked child; True if it returned, False if it raised; TimedOut at the deadline."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            call()
            code = 0
        finally:
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        if deadline.expired():
            import signal
            os.kill(pid, signal.SIGKILL)  # takes effect once the kernel lets go, if it ever does
            raise TimedOut(f"{what} did not finish before the deadline")
        deadline.sleep(poll_interval)
