# SPDX-License-Identifier: GPL-2.0-or-later
"""OCF 1.1 metadata XML for an agent, built with lxml from its declarations."""

from __future__ import annotations

from hamail.params import Kind, Param, ParamTable

__all__ = ["ActionSpec", "AgentSpec", "build_metadata", "published_params", "DOCTYPE"]

# The document type is ra-api-1.dtd, which ocf-tester validates against with `xmllint --valid`, carried in
# the internal subset with OCF 1.1's and Pacemaker's additions: the parameter attributes unique-group and
# reloadable, the <deprecated> child of a parameter (pcs 0.11 warns when a deprecated parameter is used), and
# the reload-agent action. The external ra-api-1.dtd cannot be referenced beside it: XML forbids declaring an
# element twice, and <parameter> must be redeclared to admit <deprecated>. tests/core/test_admin_compat.py
# checks that this is ra-api-1.dtd plus exactly these additions.
DOCTYPE = """<!DOCTYPE resource-agent [
<!ELEMENT resource-agent (version,longdesc,shortdesc,parameters?,actions) >
<!ATTLIST resource-agent
        name    CDATA   #REQUIRED
        version CDATA   #IMPLIED>
<!ELEMENT version (#PCDATA)>
<!ELEMENT parameters (parameter*)>
<!ELEMENT actions (action*)>
<!ELEMENT parameter (longdesc+,shortdesc+,deprecated?,content)>
<!ATTLIST parameter
        name    CDATA   #REQUIRED
        required  (1|0)   "0"
        unique  (1|0)   "0"
        unique-group CDATA #IMPLIED
        reloadable (0|1) "0">
<!ELEMENT deprecated (replaced-with*,desc*)>
<!ELEMENT replaced-with EMPTY>
<!ATTLIST replaced-with
        name    CDATA   #REQUIRED>
<!ELEMENT desc ANY>
<!ATTLIST desc
        lang    NMTOKEN #IMPLIED>
<!ELEMENT longdesc ANY>
<!ATTLIST longdesc
        lang    NMTOKEN #IMPLIED>
<!ELEMENT shortdesc ANY>
<!ATTLIST shortdesc
        lang    NMTOKEN #IMPLIED>
<!ELEMENT content EMPTY>
<!ATTLIST content
        type    (string|integer|boolean|time)        #REQUIRED
        default CDATA   #IMPLIED>
<!ELEMENT action EMPTY>
<!ATTLIST action
        name (start|stop|recover|monitor|restart|migrate_to|migrate_from|promote|demote|notify|status|reload|
              reload-agent|meta-data|usage|methods|validate-all) #REQUIRED
        timeout         CDATA   #REQUIRED
        interval        CDATA   #IMPLIED
        start-delay     CDATA   #IMPLIED
        role            CDATA   #IMPLIED
        depth           CDATA   #IMPLIED>
]>"""

_TRACE_PARAMS: tuple = ()


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


def trace_params() -> tuple:
    """trace_ra and trace_file, which the OCF core implements for every agent (hamail.ocf.trace)."""
    global _TRACE_PARAMS
    if not _TRACE_PARAMS:  # built on first use: the monitor path never needs them
        _TRACE_PARAMS = (
            Param("trace_ra", Kind.BOOLEAN, "Set to 1 to turn on resource agent tracing (expect large output)",
                  "Set to 1 to turn on resource agent tracing (expect large output). The trace of each action "
                  "(the agent's debug log, the commands it runs with their results, the exit code and reason; "
                  "secrets blanked) is saved to trace_file, if set, or by default to "
                  "$HA_VARLIB/trace_ra/<type>/<id>.<action>.<timestamp> (HA_VARLIB is /var/lib/heartbeat), e.g. "
                  "/var/lib/heartbeat/trace_ra/IPaddr2/vip.start.2024-05-01.08:37:08, as with ocf-shellfuncs "
                  "agents. `crm resource trace <rsc> <op>` sets it for one operation.", default="0"),
            Param("trace_file", Kind.STRING, "Path to a file to store resource agent tracing log",
                  "Path to a file to store resource agent tracing log (an absolute path; the trace is appended; "
                  "mode 0600), instead of the default file under /var/lib/heartbeat/trace_ra."),
        )
    return _TRACE_PARAMS


def published_params(params: ParamTable) -> tuple:
    """The agent's parameters followed by the tracing parameters the core adds (those it does not declare)."""
    return tuple(params) + tuple(p for p in trace_params() if params.get(p.name) is None)


def _desc(parent, tag: str, text: str) -> None:
    from lxml import etree
    element = etree.SubElement(parent, tag, lang="en")
    element.text = text


def _param_element(parent, param: Param) -> None:
    from lxml import etree
    attrs = {"name": param.name}
    if param.unique_group:
        attrs["unique-group"] = param.unique_group
    # unique (deprecated by OCF 1.1 for unique-group) is what crmsh 4.4 checks to refuse a second primitive
    # with the same value; resource-agents publishes unique="1"/"0" on every parameter, so do we.
    attrs["unique"] = "1" if param.unique_group else "0"
    attrs["required"] = "1" if param.required else "0"
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
        # The text is for crmsh, which ignores <deprecated>; pcs reads the element.
        longdesc += "\nDeprecated" + (f": use {param.replaced_with} instead." if param.replaced_with else ".")
    _desc(element, "longdesc", longdesc)
    _desc(element, "shortdesc", param.shortdesc + (" (deprecated)" if param.deprecated else ""))
    if param.deprecated:
        deprecated = etree.SubElement(element, "deprecated")
        if param.replaced_with:
            etree.SubElement(deprecated, "replaced-with", name=param.replaced_with)
        _desc(deprecated, "desc", f"Kept for existing configurations; use {param.replaced_with} instead."
              if param.replaced_with else "Kept for existing configurations.")
    content = {"type": param.kind.content_type}
    if param.default is not None:
        content["default"] = param.default
    etree.SubElement(element, "content", content)


def build_metadata(spec: AgentSpec) -> bytes:
    """The agent's metadata document, valid against ra-api-1.dtd (with OCF 1.1's additions) and pcs's ocf-1.1.rng."""
    from lxml import etree
    root = etree.Element("resource-agent", name=spec.name, version=spec.version)
    etree.SubElement(root, "version").text = "1.1"
    _desc(root, "longdesc", spec.longdesc)
    _desc(root, "shortdesc", spec.shortdesc)
    params = etree.SubElement(root, "parameters")
    for param in published_params(spec.params):
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
