# SPDX-License-Identifier: GPL-2.0-or-later
"""Re-capture the DRBD 8.4 samples in this directory from a real pair (lab/hamail_lab/pair.py), as root.

    /usr/bin/python3 tests/unit/data/drbd/capture.py [WORKDIR]

Boots the two TCG guests (Debian's 6.1 kernel: drbd.ko 8.4.11, the host's drbd-utils 9.22 which runs
drbdadm-84/drbdsetup-84 against that kernel), walks resource r0 through the states below and stores, per
state, what the agent reads: ``<state>.sh-status`` (drbdadm sh-status), ``<state>.proc-drbd``,
``<state>.status`` (drbdsetup status --verbose --statistics) and ``<state>.queries`` (drbdadm role/cstate/dstate,
one ``name<TAB>rc<TAB>output`` line each). Nothing is edited by hand afterwards.
"""

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "lab"))

from hamail_lab.pair import Pair  # noqa: E402

RES = """resource r0 {
  protocol C;
  net { after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; }
  on pair-a { device /dev/drbd0; disk /dev/vda; address 192.0.2.21:7788; meta-disk internal; }
  on pair-b { device /dev/drbd0; disk /dev/vda; address 192.0.2.22:7788; meta-disk internal; }
}
"""


def snap(pair: Pair, key: str, state: str) -> None:
    """Store every view of r0 on guest ``key`` as sample ``state``."""
    out = pair.run(key, ["drbdadm", "sh-status", "r0"])
    (HERE / f"{state}.sh-status").write_text(out.stdout)
    (HERE / f"{state}.proc-drbd").write_text(pair.run(key, ["cat", "/proc/drbd"]).stdout)
    status = pair.run(key, ["drbdsetup", "status", "r0", "--verbose", "--statistics"])
    (HERE / f"{state}.status").write_text(status.stdout if status.returncode == 0 else "")
    lines = []
    for query in ("role", "cstate", "dstate"):
        done = pair.run(key, ["drbdadm", query, "r0"])
        lines.append(f"{query}\t{done.returncode}\t{done.stdout.strip()}")
    (HERE / f"{state}.queries").write_text("\n".join(lines) + "\n")
    print(f"captured {state}: {lines}", flush=True)


def until(pair: Pair, key: str, word: str, timeout: float = 120) -> None:
    """Wait until /proc/drbd on ``key`` contains ``word``."""
    end = time.monotonic() + timeout
    while word not in pair.run(key, ["cat", "/proc/drbd"]).stdout:
        if time.monotonic() > end:
            raise SystemExit(f"{key}: {word} not reached: {pair.run(key, ['cat', '/proc/drbd']).stdout}")
        time.sleep(1)


def main() -> None:
    """Walk the states and capture each."""
    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="drbd-capture-")
    with Pair(workdir) as pair:
        for key in "ab":
            pair.write(key, "/etc/drbd.d/r0.res", RES)
            pair.run(key, ["drbdadm", "create-md", "--force", "r0"], check=True)
        snap(pair, "a", "unconfigured")
        pair.run("a", ["drbdadm", "up", "r0"], check=True)
        snap(pair, "a", "inconsistent-wfconnection")
        pair.run("b", ["drbdadm", "up", "r0"], check=True)
        until(pair, "a", "cs:Connected")
        snap(pair, "a", "inconsistent-connected")
        # a full sync of the 32 MiB disk takes about a minute under TCG: catch it in the middle
        pair.run("a", ["drbdadm", "--", "--overwrite-data-of-peer", "primary", "r0"], check=True)
        until(pair, "a", "SyncSource")
        snap(pair, "a", "primary-syncsource")
        snap(pair, "b", "secondary-synctarget")
        until(pair, "b", "ds:UpToDate/UpToDate", timeout=300)
        snap(pair, "a", "primary-connected")
        snap(pair, "b", "secondary-peer-primary")
        pair.run("a", ["drbdadm", "secondary", "r0"], check=True)
        snap(pair, "a", "secondary-connected")
        pair.run("b", ["drbdadm", "down", "r0"], check=True)
        until(pair, "a", "WFConnection")
        snap(pair, "a", "secondary-wfconnection")
        pair.run("a", ["drbdadm", "primary", "r0"], check=True)
        snap(pair, "a", "primary-wfconnection")
        pair.run("a", ["drbdadm", "secondary", "r0"], check=True)
        pair.run("b", ["drbdadm", "up", "r0"], check=True)
        until(pair, "b", "ds:UpToDate/UpToDate")
        pair.run("a", ["drbdadm", "disconnect", "r0"], check=True)
        snap(pair, "a", "secondary-standalone")
        pair.run("b", ["drbdadm", "outdate", "r0"], check=True)
        snap(pair, "b", "outdated-wfconnection")
        pair.run("b", ["drbdadm", "detach", "r0"], check=True)
        snap(pair, "b", "diskless-wfconnection")


if __name__ == "__main__":
    main()
