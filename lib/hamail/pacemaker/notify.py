# SPDX-License-Identifier: GPL-2.0-or-later
"""Notification data of promotable and clone resources, from OCF_RESKEY_CRM_meta_notify_*."""

import dataclasses
from typing import Mapping

__all__ = ["NotifyData"]

_NOTIFY_LISTS = ("start", "stop", "promote", "demote", "active", "promoted", "unpromoted", "inactive")


@dataclasses.dataclass(frozen=True)
class NotifyData:
    """The notify variables of one notification, as lists of node names and instance ids."""

    type: str
    operation: str
    unames: Mapping[str, tuple[str, ...]]
    resources: Mapping[str, tuple[str, ...]]
    all_unames: tuple[str, ...]
    available_unames: tuple[str, ...]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "NotifyData":
        """Read OCF_RESKEY_CRM_meta_notify_*; the legacy master/slave lists fill promoted/unpromoted."""
        def words(name: str) -> tuple[str, ...]:
            return tuple(environ.get("OCF_RESKEY_CRM_meta_notify_" + name, "").split())
        legacy = {"promoted": "master", "unpromoted": "slave"}
        unames, resources = {}, {}
        for kind in _NOTIFY_LISTS:
            unames[kind] = words(f"{kind}_uname") or (words(f"{legacy[kind]}_uname") if kind in legacy else ())
            resources[kind] = words(f"{kind}_resource") or (
                words(f"{legacy[kind]}_resource") if kind in legacy else ())
        return cls(
            type=environ.get("OCF_RESKEY_CRM_meta_notify_type", ""),
            operation=environ.get("OCF_RESKEY_CRM_meta_notify_operation", ""),
            unames=unames, resources=resources,
            all_unames=words("all_uname"), available_unames=words("available_uname"))

    @property
    def is_pre(self) -> bool:
        """A pre-operation notification."""
        return self.type == "pre"

    def nodes(self, kind: str) -> tuple[str, ...]:
        """Node names of one list (start, stop, promote, demote, active, promoted, unpromoted)."""
        return self.unames.get(kind, ())
