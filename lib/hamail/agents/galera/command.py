# SPDX-License-Identifier: GPL-2.0-or-later
"""The hamail-galera admin command: `hamail-galera status [RESOURCE] [--json] [--timeout S]`.

Exit status: 0 a Primary component runs, 1 none runs (the agents wait or are about to bootstrap), 2 the cluster
or the resource cannot be read. Errors are one line on stderr; the command never changes anything.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "parser"]

DEFAULT_TIMEOUT_S = 30.0


def parser() -> argparse.ArgumentParser:
    """The command line (also the source of the man page)."""
    top = argparse.ArgumentParser(
        prog="hamail-galera",
        description="Show what a cluster running ocf:hamail:galera knows and what its agents will do. "
                    "Run on any cluster node; it reads Pacemaker and never changes anything.",
        epilog="Exit status: 0 a Primary component runs; 1 none runs (the agents wait, or are about to bootstrap); "
               "2 the cluster or the resource cannot be read.")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    status = commands.add_parser(
        "status", help="nodes' positions, the bootstrap decision and why, what would end a wait, what each "
                       "override would risk",
        description="One row per Galera node (Pacemaker state, role, cluster UUID, recovered seqno, "
                    "safe_to_bootstrap, last Primary view, fencing); the running Primary component; the decision "
                    "the agent takes now and why, in its own words; when it waits, what would end the wait safely "
                    "and, for each node an override could name, what it would risk and the command that applies it.")
    status.add_argument("resource", nargs="?", metavar="RESOURCE",
                        help="the galera primitive or its clone (default: the only ocf:hamail:galera resource)")
    status.add_argument("--json", action="store_true", help="print one JSON document (schema: status-schema.json)")
    status.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"give up reading the cluster after this long (default {DEFAULT_TIMEOUT_S:.0f})")
    return top


def main(argv=None, runner=None) -> int:
    """Run the command (runner: the seam to Pacemaker's tools); the exit status (see the module docstring)."""
    from hamail.agents.galera.status import EXIT_UNREADABLE, StatusError, collect, render
    args = parser().parse_args(argv)
    if not args.timeout > 0:
        print("hamail-galera: --timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_UNREADABLE
    from hamail.system.clock import Deadline
    from hamail.system.runner import CommandRunner
    try:
        reading = collect(runner or CommandRunner(), Deadline.after(args.timeout), args.resource)
    except StatusError as exc:
        print(f"hamail-galera: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except Exception as exc:  # noqa: BLE001 - one readable line at 3 a.m., never a traceback
        print(f"hamail-galera: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    doc = reading.document
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if args.json else render(doc))
    return doc["exit"]
