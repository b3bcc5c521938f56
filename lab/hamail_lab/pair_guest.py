# SPDX-License-Identifier: GPL-2.0-or-later
"""PID 1 of a pair guest (see pair.py): set up the node, then run the commands the host spools over 9p.

Standard library only, no imports from the checkout: it runs as the guest's init with the host's Python.
Each request ``cmd/<id>.json`` ({"argv", "timeout", "env", "input"}) is answered by ``out/<id>.json``
({"returncode", "stdout", "stderr"}), written to a temporary name and renamed so the host never reads half.
"""

import json
import os
import subprocess
import sys
import threading
import time

SHARE = "/hamail-share"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def say(message: str) -> None:
    """Progress on the serial console, timestamped from boot."""
    with open("/proc/uptime") as handle:
        uptime = handle.read().split()[0]
    sys.stdout.write(f"[{uptime}] pair-guest: {message}\n")
    sys.stdout.flush()


def setup() -> None:
    """Hostname, loopback and the replication interface from identity.json."""
    with open(os.path.join(SHARE, "identity.json")) as handle:
        identity = json.load(handle)
    with open("/proc/sys/kernel/hostname", "w") as handle:
        handle.write(identity["hostname"])
    for argv in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "eth0", "up"],
                 ["ip", "addr", "add", identity["address"], "dev", "eth0"]):
        done = subprocess.run(argv, capture_output=True, text=True, env={"PATH": PATH}, timeout=30)
        if done.returncode:
            say(f"{' '.join(argv)}: {done.stderr.strip()}")
    os.makedirs("/run/lock", exist_ok=True)
    os.makedirs("/var/run/drbd", exist_ok=True)
    say(f"{identity['hostname']} up with {identity['address']}")


def answer(name: str, children: set) -> None:
    """Run one request (claimed as ``<name>.run``) and write its answer."""
    path = os.path.join(SHARE, "cmd", name + ".run")
    try:
        with open(path) as handle:
            request = json.load(handle)
    except (OSError, ValueError):
        return
    os.unlink(path)
    argv = request["argv"]
    env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    env.update(request.get("env") or {})
    say(f"run {' '.join(argv)[:200]}")
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env, start_new_session=True, cwd="/")
    except OSError as exc:
        reply = {"returncode": 127, "stdout": "", "stderr": str(exc)}
    else:
        children.add(child.pid)
        try:
            out, err = child.communicate(request.get("input") or "", timeout=request.get("timeout", 60))
            reply = {"returncode": child.returncode, "stdout": out, "stderr": err}
        except subprocess.TimeoutExpired as exc:
            os.killpg(child.pid, 9)
            child.communicate()
            reply = {"returncode": -9, "stdout": "", "stderr": f"timed out after {exc.timeout} s"}
        finally:
            children.discard(child.pid)
    say(f"done {argv[0]} -> {reply['returncode']}")
    tmp = os.path.join(SHARE, "out", f".{name}.tmp")
    with open(tmp, "w") as handle:
        json.dump(reply, handle)
    os.rename(tmp, os.path.join(SHARE, "out", name))


def reap(children: set) -> None:
    """As init, collect re-parented orphans, never a child a request thread still waits for."""
    while True:
        time.sleep(5)
        try:
            for entry in os.listdir("/proc"):
                if entry.isdigit() and int(entry) not in children:
                    with open(f"/proc/{entry}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    if fields[0] == "Z" and fields[1] == "1" and int(entry) not in children:
                        os.waitpid(int(entry), os.WNOHANG)
        except (OSError, ChildProcessError):
            pass


def main() -> None:
    """Set up, say ready, then serve requests forever (the host ends the guest with poweroff -f)."""
    say("started")
    try:
        setup()
    except Exception as exc:  # the host sees the reason on the console; serving commands still helps debugging
        say(f"setup failed: {exc!r}")
    children: set = set()
    threading.Thread(target=reap, args=(children,), daemon=True).start()
    with open(os.path.join(SHARE, "ready"), "w") as handle:
        handle.write("ready\n")
    say("ready")
    cmd = os.path.join(SHARE, "cmd")
    while True:
        for name in sorted(os.listdir(cmd)):
            if name.endswith(".json"):
                # claimed by renaming before the thread starts, so the next listing cannot start it twice
                os.rename(os.path.join(cmd, name), os.path.join(cmd, name + ".run"))
                threading.Thread(target=answer, args=(name, children), daemon=True).start()
        time.sleep(0.1)


if __name__ == "__main__":
    main()
