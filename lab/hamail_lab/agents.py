# SPDX-License-Identifier: GPL-2.0-or-later
"""The checkout's OCF and fence agents, seen by Pacemaker inside each lab node and nowhere else.

Pacemaker looks up ``ocf:hamail:X`` in /usr/lib/ocf/resource.d/hamail and fence agents
(stonith:fence_X) in /usr/sbin.  Every lab node gets, in its own mount namespace, a read-only
overlay on each of those two directories whose top layer (a directory below the node's
workdir) holds one symlink per agent into the checkout: the node sees the host's providers and
programs plus the checkout's agents, which hide an installed hamail package or another
checkout's links.  Nothing is written to the host's /usr.  After boot the lab checks inside
the node that the agents resolve into the checkout under test and refuses to go on otherwise.

Earlier versions of the lab linked the agents on the host; ``uninstall_agents`` removes such
leftovers (only symlinks pointing into the given checkout).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

OCF_PROVIDER_DIR = Path("/usr/lib/ocf/resource.d/hamail")
FENCE_DIR = Path("/usr/sbin")
CHECKOUT = Path(__file__).resolve().parents[2]


def fence_agents(checkout: Path) -> list[Path]:
    """The fence agent files of a checkout (fence/fence_*), sorted."""
    fence_dir = checkout / "fence"
    if not fence_dir.is_dir():
        return []
    return sorted(p for p in fence_dir.glob("fence_*") if p.is_file() and not p.name.endswith((".py", ".pyc")))


def overlay_layers(checkout: Path, layer_root: Path) -> list[list[str]]:
    """Build the top layers below ``layer_root``; return [layer, mount point] pairs for node_init."""
    checkout = Path(checkout).resolve()
    if not (checkout / "agents").is_dir() or not (checkout / "lib" / "hamail").is_dir():
        raise ValueError(f"{checkout} is not a hamail checkout (agents/ and lib/hamail/ missing)")
    if layer_root.exists():
        shutil.rmtree(layer_root)
    ocf = layer_root / "ocf-resource.d"
    sbin = layer_root / "sbin"
    ocf.mkdir(parents=True)
    sbin.mkdir()
    (ocf / OCF_PROVIDER_DIR.name).symlink_to(checkout / "agents")
    for agent in fence_agents(checkout):
        (sbin / agent.name).symlink_to(agent)
    return [[str(ocf), str(OCF_PROVIDER_DIR.parent)], [str(sbin), str(FENCE_DIR)]]


def expected_targets(checkout: Path) -> dict[str, str]:
    """Paths inside a node and where they must resolve to: one OCF agent and every fence agent."""
    checkout = Path(checkout).resolve()
    wanted = {str(OCF_PROVIDER_DIR / "Dummy"): str(checkout / "agents" / "Dummy")}
    for agent in fence_agents(checkout):
        wanted[str(FENCE_DIR / agent.name)] = str(agent.resolve())
    return wanted


def _points_into(link: Path, target_root: Path) -> bool:
    """True if ``link`` is a symlink whose target lies inside ``target_root``."""
    if not link.is_symlink():
        return False
    target = Path(os.path.realpath(link))
    root = Path(os.path.realpath(target_root))
    return target == root or root in target.parents


def uninstall_agents(checkout: Path) -> list[str]:
    """Remove host symlinks into ``checkout`` that earlier lab versions created; return what was removed."""
    checkout = Path(checkout).resolve()
    candidates = [OCF_PROVIDER_DIR] + [p for p in FENCE_DIR.glob("fence_*") if p.is_symlink()]
    removed = []
    for link in candidates:
        if link.is_symlink() and (_points_into(link, checkout)
                                  or os.readlink(link).startswith(f"{checkout}/")):
            link.unlink()
            removed.append(str(link))
    return removed
