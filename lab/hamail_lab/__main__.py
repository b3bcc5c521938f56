# SPDX-License-Identifier: GPL-2.0-or-later
"""Command line for the lab: ``python3 -m hamail_lab up|down|status|run|...`` (or ``python3 lab/hamail_lab ...``).

The cluster's state lives in the workdir (lab.json + one directory per node), so ``down``,
``status`` and ``run`` work from any later process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if not __package__:  # run as ``python3 lab/hamail_lab``: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hamail_lab.agents import uninstall_agents  # noqa: E402
from hamail_lab.cluster import POST_CHILD, STATE_FILE, Cluster  # noqa: E402
from hamail_lab.hostsys import LabError  # noqa: E402

DEFAULT_WORKDIR = Path("/var/tmp/hamail-lab")
CHECKOUT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the lab CLI."""
    parser = argparse.ArgumentParser(prog="python3 -m hamail_lab",
                                     description="Real Pacemaker clusters in namespaces on this machine.")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"state directory of the cluster (default {DEFAULT_WORKDIR})")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start a cluster (removing leftovers of the same prefix) and print crm_mon")
    up.add_argument("--nodes", type=int, choices=(1, 3), default=3)
    up.add_argument("--prefix", default="hml", help="names of netns/veths/bridge (default hml)")
    up.add_argument("--subnet", default="192.0.2", help="first three octets (default 192.0.2)")
    up.add_argument("--stonith", action="store_true", help="stonith-enabled=true")
    up.add_argument("--no-quorum-policy", default="stop")
    up.add_argument("--host-address", action="store_true", help="give the bridge <subnet>.1 on the host")
    up.add_argument("--keep-state", action="store_true", help="reuse the node directories (CIB) of the workdir")
    up.add_argument("--timeout", type=float, default=180)

    down = sub.add_parser("down", help="stop the cluster of --workdir and remove everything it created on the host")
    down.add_argument("--force", action="store_true", help="even if another live process started it")
    status = sub.add_parser("status", help="crm_mon of the running cluster")
    status.add_argument("--xml", action="store_true")
    status.add_argument("--node")

    run = sub.add_parser("run", help="run a command inside a node: run NODE CMD [ARGS...]")
    run.add_argument("node")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    run.add_argument("--timeout", type=float, default=600)

    for name, text in (("kill", "power-cut a node"), ("boot", "boot a stopped node"),
                       ("cycle", "power-cut a node and boot it again"),
                       ("alive", "exit 0 if the node is running, 1 if not (a BMC's power status)"),
                       ("cut", "isolate a node's network link"), ("restore", "restore a node's link"),
                       ("logs", "show the tail of a node's logs")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("node")
        if name in ("boot", "cycle"):
            cmd.add_argument("--no-wait", action="store_true",
                             help="return once the node's init runs, not when the cluster has it online")
            cmd.add_argument("--post", type=float, default=0, metavar="SECONDS",
                             help="report power on at once but boot SECONDS later (a real machine's POST)")
    sub.add_parser("heal", help="restore all links, boot dead nodes and wait until all are online")

    cmd = sub.add_parser("uninstall-agents", help="remove host symlinks into the checkout left by older labs")
    cmd.add_argument("--checkout", type=Path, default=CHECKOUT)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one CLI command; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "uninstall-agents":
        for path in uninstall_agents(args.checkout):
            print(f"removed {path}")
        return 0
    if args.command == "up":
        cluster = Cluster(args.workdir, args.nodes, args.prefix, args.subnet, stonith_enabled=args.stonith,
                          no_quorum_policy=args.no_quorum_policy, host_address=args.host_address,
                          checkout=CHECKOUT)
        try:
            cluster.start(timeout=args.timeout, fresh=not args.keep_state)
        except BaseException:
            cluster.stop()
            raise
        print(f"cluster {args.prefix} up in {cluster.startup_seconds:.1f} s "
              f"(workdir {cluster.workdir}; stop with: python3 -m hamail_lab --workdir {cluster.workdir} down)")
        print(cluster.run(cluster.nodes[0], ["crm_mon", "-1", "--inactive"]).stdout, end="")
        return 0
    if not (args.workdir / STATE_FILE).exists():
        if args.command == "down":
            print(f"no lab state in {args.workdir}: nothing to stop")
            return 0
        raise LabError(f"no lab state in {args.workdir}: run 'up' first")
    cluster = Cluster.load(args.workdir)
    if args.command == "down":
        cluster.stop(force=args.force)
        print(f"cluster {cluster.prefix} stopped")
    elif args.command == "status":
        node = args.node or cluster.first_running()
        if args.xml:
            sys.stdout.buffer.write(cluster.crm_mon_xml(node))
        else:
            print(cluster.run(node, ["crm_mon", "-1", "--inactive", "--fence-history=1"]).stdout, end="")
    elif args.command == "run":
        argv_ = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not argv_:
            raise LabError("run needs a command")
        proc = cluster.run(args.node, argv_, timeout=args.timeout)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode
    elif args.command == "kill":
        cluster.kill_node(args.node)
    elif args.command in ("boot", "cycle"):
        if args.command == "cycle":
            cluster.kill_node(args.node)
        elif cluster.is_running(args.node) or cluster.powering_on(args.node):
            return 0  # powering on a machine that is on is a no-op, as on a BMC
        if args.post and args.no_wait:
            if os.environ.get(POST_CHILD) == args.node:
                cluster.post_then_boot(args.node, args.post)
            else:
                cluster.power_on_later(args.node, args.post)
        else:
            cluster.start_node(args.node, wait=not args.no_wait)
    elif args.command == "alive":
        return 0 if cluster.is_running(args.node) or cluster.powering_on(args.node) else 1
    elif args.command == "cut":
        cluster.cut_link(args.node)
    elif args.command == "restore":
        cluster.restore_link(args.node)
    elif args.command == "logs":
        print(cluster.logs_tail(args.node, lines=60))
    elif args.command == "heal":
        print("online:", " ".join(cluster.heal().online()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LabError as exc:
        print(f"hamail_lab: {exc}", file=sys.stderr)
        sys.exit(1)
