# SPDX-License-Identifier: GPL-2.0-or-later
"""The resources section of the CIB as typed objects: which primitives exist, their agent and parameters.

Admin commands (hamail-galera status) use it to find a resource and read the parameters its agent runs with;
agents themselves get their parameters from the environment and never need it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

from hamail.pacemaker import PacemakerError

__all__ = ["Primitive", "parse_resources", "read_resources"]

# Elements that wrap a primitive into several instances.
_WRAPPERS = ("clone", "master", "bundle")


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One primitive resource: id, agent, instance parameters, and the clone (or bundle) holding it."""

    id: str
    standard: str
    provider: str
    type: str
    params: Mapping[str, str]
    clone: Optional[str]
    promotable: bool

    @property
    def agent(self) -> str:
        """The agent as Pacemaker names it (ocf:hamail:galera)."""
        return ":".join(p for p in (self.standard, self.provider, self.type) if p)

    def named(self, name: str) -> bool:
        """Whether name designates this resource: its id, its clone's id, or a clone instance (galera:1)."""
        name = name.split(":", 1)[0] if ":" not in self.id else name
        return name in (self.id, self.clone)


def _true(value: Optional[str]) -> bool:
    return (value or "").lower() in ("true", "yes", "on", "1", "y")


def parse_resources(xml: bytes) -> list[Primitive]:
    """Every primitive in a CIB (or its resources section), in document order.

    Parameters are the nvpairs of instance_attributes sets without rules (a rule-dependent set applies on some
    nodes only and cannot be read without evaluating it); a later set does not override an earlier one, as
    Pacemaker orders sets by score and then by document order.
    """
    from lxml import etree
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise PacemakerError(f"the CIB is not XML: {exc}") from None
    found = []
    for rsc in root.iter("primitive"):
        params: dict[str, str] = {}
        for attrs in rsc.iterfind("instance_attributes"):
            if attrs.find("rule") is not None:
                continue
            for pair in attrs.iterfind("nvpair"):
                params.setdefault(pair.get("name", ""), pair.get("value", ""))
        wrapper = next((a for a in rsc.iterancestors() if a.tag in _WRAPPERS), None)
        promotable = wrapper is not None and (wrapper.tag == "master" or any(
            _true(n.get("value")) for n in wrapper.iterfind("meta_attributes/nvpair") if n.get("name") == "promotable"))
        found.append(Primitive(rsc.get("id", ""), rsc.get("class", ""), rsc.get("provider", ""), rsc.get("type", ""),
                               params, wrapper.get("id") if wrapper is not None else None, promotable))
    return found


def read_resources(runner, deadline=None) -> list[Primitive]:
    """The primitives of the live CIB (cibadmin --query)."""
    result = runner.run(["cibadmin", "--query", "--scope", "resources"], deadline=deadline, timeout=20)
    if not result.ok or not result.stdout.lstrip().startswith("<"):
        raise PacemakerError(f"cannot read the CIB: {result.first_error_line() or 'cibadmin failed'}")
    return parse_resources(result.stdout.encode())
