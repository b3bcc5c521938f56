"""Make the checkout's OCF and fence agents visible to Pacemaker (symlinks, never clobbering).

Pacemaker looks up ``ocf:hamail:X`` in /usr/lib/ocf/resource.d/hamail and fence agents
(stonith:fence_X) in /usr/sbin.  The lab nodes share the host's root filesystem, so one
set of symlinks on the host serves every node of every lab cluster.

To remove them: ``python3 -m hamail_lab uninstall-agents`` (or ``uninstall_agents(checkout)``),
which deletes only symlinks that point into that checkout; by hand:
``rm /usr/lib/ocf/resource.d/hamail`` and ``rm /usr/sbin/fence_NAME`` for each file in fence/
after checking with ``ls -l`` that they are symlinks into the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

OCF_PROVIDER_DIR = Path("/usr/lib/ocf/resource.d/hamail")
FENCE_DIR = Path("/usr/sbin")


def _points_into(link: Path, target_root: Path) -> bool:
    """True if ``link`` is a symlink whose target lies inside ``target_root``."""
    if not link.is_symlink():
        return False
    target = Path(os.path.realpath(link))
    root = Path(os.path.realpath(target_root))
    return target == root or root in target.parents


def _other_checkout_link(link: Path) -> bool:
    """True if ``link`` is dangling or points into another hamail checkout (agents/ or fence/ beside lib/hamail).

    Such a link is a lab's leftover, never a package's: replacing it makes Pacemaker run the code under test.
    """
    target = Path(os.path.realpath(link))
    if not target.exists():
        return True
    return any((parent / "lib" / "hamail").is_dir() for parent in (target.parent, target.parent.parent)
               if target.parent.name in ("agents", "fence") or target.name == "agents")


def _fence_agents(checkout: Path) -> list[Path]:
    """The fence agent files of a checkout (fence/fence_*), sorted."""
    fence_dir = checkout / "fence"
    if not fence_dir.is_dir():
        return []
    return sorted(p for p in fence_dir.glob("fence_*") if p.is_file() and not p.name.endswith((".py", ".pyc")))


def _link(link: Path, target: Path, checkout: Path) -> str:
    """Create or refresh one symlink; return 'created', 'kept' or 'skipped: reason'."""
    if link.is_symlink():
        current = os.readlink(link)
        if current == str(target):
            return "kept"
        if not (_points_into(link, checkout) or current.startswith(f"{checkout}/")
                or _other_checkout_link(link)):
            return f"skipped: {link} is a symlink to {current}, not into {checkout}"
        link.unlink()
    elif link.exists():
        return f"skipped: {link} exists and is not our symlink"
    link.symlink_to(target)
    return "created"


def install_agents(checkout: Path) -> dict[str, str]:
    """Symlink <checkout>/agents as the 'hamail' OCF provider and fence/fence_* into /usr/sbin; never clobber."""
    checkout = Path(checkout).resolve()
    result = {}
    OCF_PROVIDER_DIR.parent.mkdir(parents=True, exist_ok=True)
    result[str(OCF_PROVIDER_DIR)] = _link(OCF_PROVIDER_DIR, checkout / "agents", checkout)
    for agent in _fence_agents(checkout):
        result[str(FENCE_DIR / agent.name)] = _link(FENCE_DIR / agent.name, agent, checkout)
    return result


def uninstall_agents(checkout: Path) -> list[str]:
    """Remove the symlinks made by install_agents that point into ``checkout``; return what was removed."""
    checkout = Path(checkout).resolve()
    candidates = [OCF_PROVIDER_DIR] + [FENCE_DIR / p.name for p in _fence_agents(checkout)]
    candidates += [p for p in FENCE_DIR.glob("fence_*") if p.is_symlink()]
    removed = []
    for link in dict.fromkeys(candidates):
        if link.is_symlink() and (_points_into(link, checkout)
                                  or os.readlink(link).startswith(f"{checkout}/")):
            link.unlink()
            removed.append(str(link))
    return removed
