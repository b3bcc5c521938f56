# SPDX-License-Identifier: GPL-2.0-or-later
"""Location constraints in the CIB: one role kept on one node, built, compared, created and deleted by id.

The pure half builds and compares constraint XML with lxml and finds what a decision needs in a CIB (a
constraint by id, the promotable clone holding a primitive with a given parameter, whether the schema knows
the Promoted role). The other half is cibadmin through the command runner, each call bounded by the caller's
deadline. DRBD's fence-peer handler is the user: it bans the Promoted role from every node but its own.
"""

from __future__ import annotations

from hamail.pacemaker import PacemakerError
from hamail.system.clock import Deadline
from hamail.system.runner import CommandResult, CommandRunner

__all__ = ["role_only_on", "same_constraint", "find_by_id", "parse_cib", "promotable_holding",
           "role_name", "node_name_in_rule", "Constraints", "EXISTS", "NO_SUCH_OBJECT"]

# cibadmin's exit codes (Pacemaker 2.x crm_exit_t): the object to create exists; the object is not there.
EXISTS = 108
NO_SUCH_OBJECT = 105
# Each cibadmin call gets at most this long (and never more than the caller's deadline).
TOOL_TIMEOUT = 20


def role_only_on(constraint_id: str, rsc: str, role: str, node: str, attribute: str = "#uname") -> str:
    """A location constraint keeping `role` of `rsc` off every node whose `attribute` is not `node`:
    a rule scoring -INFINITY where attribute ne node (the shape DRBD's crm-fence-peer handlers place)."""
    from lxml import etree
    location = etree.Element("rsc_location", id=constraint_id, rsc=rsc)
    rule = etree.SubElement(location, "rule", id=f"{_rule_prefix(constraint_id, rsc)}-rule-{rsc}",
                            role=role, score="-INFINITY")
    etree.SubElement(rule, "expression", id=f"{_rule_prefix(constraint_id, rsc)}-expr-{rsc}",
                     attribute=attribute, operation="ne", value=node)
    return etree.tostring(location, encoding="unicode")


def _rule_prefix(constraint_id: str, rsc: str) -> str:
    """The constraint id without its -<rsc> tail: child ids read <prefix>-rule-<rsc>, as the handlers name them."""
    tail = f"-{rsc}"
    return constraint_id[:-len(tail)] if constraint_id.endswith(tail) else constraint_id


def _canonical(element) -> tuple:
    """An element as (tag, attributes without ids, children), Master/Promoted and Slave/Unpromoted unified."""
    attrs = tuple(sorted((k, _ROLE_ALIASES.get(v, v) if k == "role" else v)
                         for k, v in element.attrib.items() if k != "id"))
    return element.tag, attrs, tuple(_canonical(child) for child in element if isinstance(child.tag, str))


_ROLE_ALIASES = {"Master": "Promoted", "Slave": "Unpromoted"}


def same_constraint(have, want: str) -> bool:
    """Whether an existing constraint element means the same as the XML `want` (ids and role spelling aside)."""
    from lxml import etree
    return have is not None and _canonical(have) == _canonical(etree.fromstring(want))


def parse_cib(xml: str | bytes):
    """The CIB (or a part of it) as an lxml element; PacemakerError when it is not XML."""
    from lxml import etree
    try:
        return etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    except etree.XMLSyntaxError as exc:
        raise PacemakerError(f"the CIB is not XML: {exc}") from None


def find_by_id(cib, tag: str, element_id: str):
    """The element <tag id=element_id> anywhere in the CIB element, None when absent."""
    return next((e for e in cib.iter(tag) if e.get("id") == element_id), None)


def promotable_holding(cib, param: str, value: str) -> str | None:
    """The id of the promotable clone (or legacy master) whose primitive has instance parameter param=value."""
    for wrapper in cib.iter("clone", "master"):
        promotable = wrapper.tag == "master" or any(
            n.get("name") == "promotable" and (n.get("value") or "").lower() in ("true", "yes", "on", "1", "y")
            for n in wrapper.iterfind("meta_attributes/nvpair"))
        if not promotable:
            continue
        for pair in wrapper.iterfind("primitive/instance_attributes/nvpair"):
            if pair.get("name") == param and pair.get("value") == value:
                return wrapper.get("id")
    return None


def role_name(cib) -> str:
    """How this CIB's schema spells the promoted role in rules: Promoted from pacemaker-3.7 on, else Master.

    Older schemas take any text as a rule's role, and a Pacemaker before 2.1 (still possible in a cluster whose
    CIB was never upgraded) would never match "Promoted": the ban would silently be void.
    """
    schema = (cib.get("validate-with") or "") if cib is not None else ""
    major, _, minor = schema.removeprefix("pacemaker-").partition(".")
    try:
        return "Promoted" if (int(major), int(minor)) >= (3, 7) else "Master"
    except ValueError:
        return "Master"  # unknown or "none": the old name every schema still accepts


def node_name_in_rule(element) -> str | None:
    """The node a role_only_on constraint keeps the role on (its #uname ne <node> expression), else None."""
    if element is None:
        return None
    found = [e.get("value") for e in element.iter("expression")
             if e.get("attribute") == "#uname" and e.get("operation") == "ne"]
    return found[0] if len(found) == 1 else None


class Constraints:
    """The live CIB's constraints through cibadmin, every call bounded by the deadline."""

    def __init__(self, runner: CommandRunner, deadline: Deadline | None = None) -> None:
        self._runner = runner
        self._deadline = deadline

    def _run(self, argv: list, timeout: float = TOOL_TIMEOUT) -> CommandResult:
        return self._runner.run(argv, deadline=self._deadline, timeout=timeout)

    def query(self, local: bool = True, timeout: float = TOOL_TIMEOUT):
        """The whole CIB as an element: this node's copy (local) or the DC's (fails while there is none)."""
        result = self._run(["cibadmin", "--query", *(["--local"] if local else [])], timeout)
        if not result.ok or not result.stdout.lstrip().startswith("<"):
            raise PacemakerError(f"cannot read the CIB: {result.first_error_line()}")
        return parse_cib(result.stdout)

    def create(self, xml: str) -> bool:
        """Add a constraint; False when one with its id exists already (the caller compares), else raises."""
        result = self._run(["cibadmin", "--create", "--scope", "constraints", "--xml-text", xml])
        if result.ok:
            return True
        if result.rc == EXISTS or "already exists" in (result.stderr + result.stdout).lower():
            return False
        raise PacemakerError(f"cannot create the constraint: {_failure(result)}")

    def delete(self, tag: str, element_id: str) -> None:
        """Remove the constraint <tag id=element_id> (absent is fine: Pacemaker 2.1 answers 0 for that too)."""
        from lxml import etree
        xml = etree.tostring(etree.Element(tag, id=element_id), encoding="unicode")
        result = self._run(["cibadmin", "--delete", "--scope", "constraints", "--xml-text", xml])
        if not result.ok and result.rc != NO_SUCH_OBJECT:
            raise PacemakerError(f"cannot delete constraint {element_id}: {_failure(result)}")


def _failure(result: CommandResult) -> str:
    """cibadmin's reason: its "Call failed" line (a rejected update prints the whole CIB before it)."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if line.startswith("Call ")), result.first_error_line())
