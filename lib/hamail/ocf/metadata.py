"""OCF 1.1 metadata XML for an agent, built with lxml from its declarations."""

from __future__ import annotations

from hamail.params import Kind, Param, ParamTable

__all__ = ["ActionSpec", "AgentSpec", "build_metadata", "DOCTYPE"]

# ra-api-1.dtd predates OCF 1.1: the internal subset declares the 1.1 and Pacemaker additions
# (unique-group, reloadable, the reload-agent action) so `xmllint --valid` as run by
# ocf-tester accepts the document while pcs and Pacemaker read it as OCF 1.1.
DOCTYPE = """<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd" [
<!ATTLIST parameter unique-group CDATA #IMPLIED reloadable (0|1) "0">
<!ATTLIST action name (start|stop|monitor|promote|demote|notify|reload|reload-agent|meta-data|validate-all|usage|migrate_to|migrate_from|status|recover|restart|methods) #REQUIRED>
]>"""


class ActionSpec:
    """One action an agent advertises, with its default timeout (seconds) and, for monitors, interval."""

    __slots__ = ("name", "timeout", "interval", "depth", "role")

    def __init__(self, name: str, timeout: int, interval: int | None = None, depth: int | None = None,
                 role: str | None = None) -> None:
        self.name, self.timeout, self.interval, self.depth, self.role = name, timeout, interval, depth, role

    def __repr__(self) -> str:
        return f"ActionSpec({self.name!r}, {self.timeout})"


class AgentSpec:
    """Everything an agent declares about itself: identity, documentation, parameters, actions."""

    __slots__ = ("name", "version", "shortdesc", "longdesc", "params", "actions")

    def __init__(self, name: str, version: str, shortdesc: str, longdesc: str, params: ParamTable,
                 actions: tuple) -> None:
        self.name, self.version, self.shortdesc, self.longdesc = name, version, shortdesc, longdesc
        self.params, self.actions = params, tuple(actions)

    def action_timeout(self, name: str) -> float:
        """The advertised timeout of an action (seconds), 20 s when it advertises none."""
        for action in self.actions:
            if action.name == name:
                return float(action.timeout)
        return 20.0

    def action_names(self) -> list:
        """Distinct action names, in declaration order."""
        return list(dict.fromkeys(a.name for a in self.actions))


def _desc(parent, tag: str, text: str) -> None:
    from lxml import etree
    element = etree.SubElement(parent, tag, lang="en")
    element.text = text


def _param_element(parent, param: Param) -> None:
    from lxml import etree
    attrs = {"name": param.name, "required": "1" if param.required else "0"}
    if param.unique_group:
        attrs["unique-group"] = param.unique_group
    if param.reloadable:
        attrs["reloadable"] = "1"
    # Pacemaker's private="1" is deliberately not emitted: pcs 0.11 rejects the whole agent
    # ("Invalid attribute private") when it is present. Private values are still kept out of
    # logs, exit reasons and argv by the agent itself (hamail.secret).
    element = etree.SubElement(parent, "parameter", attrs)
    longdesc = param.longdesc or param.shortdesc
    if param.kind is Kind.SELECT:
        # ra-api-1.dtd has no <option> children, so the choices are published in the text.
        longdesc += "\nAllowed values: " + ", ".join(param.choices) + "."
    if param.private:
        longdesc += "\nThis value is secret: hamail never logs it, shows it or passes it on a command line."
    if param.deprecated:
        longdesc += "\nDeprecated" + (f": use {param.replaced_with} instead." if param.replaced_with else ".")
    _desc(element, "longdesc", longdesc)
    _desc(element, "shortdesc", param.shortdesc + (" (deprecated)" if param.deprecated else ""))
    content = {"type": param.kind.content_type}
    if param.default is not None:
        content["default"] = param.default
    etree.SubElement(element, "content", content)


def build_metadata(spec: AgentSpec) -> bytes:
    """The agent's metadata document, valid against ra-api-1.dtd and pcs's ocf-1.1.rng."""
    from lxml import etree
    root = etree.Element("resource-agent", name=spec.name, version=spec.version)
    etree.SubElement(root, "version").text = "1.1"
    _desc(root, "longdesc", spec.longdesc)
    _desc(root, "shortdesc", spec.shortdesc)
    params = etree.SubElement(root, "parameters")
    for param in spec.params:
        _param_element(params, param)
    actions = etree.SubElement(root, "actions")
    for action in spec.actions:
        attrs = {"name": action.name, "timeout": f"{action.timeout}s"}
        if action.interval is not None:
            attrs["interval"] = f"{action.interval}s"
        if action.depth is not None:
            attrs["depth"] = str(action.depth)
        if action.role:
            attrs["role"] = action.role
        etree.SubElement(actions, "action", attrs)
    body = etree.tostring(root, pretty_print=True, encoding="unicode")
    # crmsh chokes on an encoding declaration: emit a bare one.
    return f'<?xml version="1.0"?>\n{DOCTYPE}\n{body}'.encode()
