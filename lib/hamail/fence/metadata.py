"""What a fence agent publishes about itself: metadata XML in the fence-agents shape, and --help text.

Imported only by the metadata and help actions (see hamail.fence.agent.run): lxml and this module stay out of
every fencing and monitor call.
"""

from __future__ import annotations

from hamail.fence.agent import FenceAgent
from hamail.fence.options import FenceOption
from hamail.params import Kind, Param

__all__ = ["metadata_xml", "help_text"]


def _content_type(param: Param) -> str:
    """fence-agents' content types: durations are published as 'second'."""
    return {Kind.DURATION: "second", Kind.PORT: "integer", Kind.PATH: "string"}.get(param.kind, param.kind.value)


def metadata_xml(agent: FenceAgent) -> bytes:
    """The agent's metadata in the fence-agents shape (lib/metadata.rng), built with lxml."""
    from lxml import etree  # lazy: only metadata needs lxml

    root = etree.Element("resource-agent", name=agent.name, shortdesc=agent.shortdesc)
    etree.SubElement(root, "longdesc").text = agent.longdesc
    etree.SubElement(root, "vendor-url").text = agent.vendor_url
    parameters = etree.SubElement(root, "parameters")

    def add(name: str, option: FenceOption, **extra: str) -> None:
        """One <parameter> element (the canonical name or a legacy alias)."""
        param = option.param
        # A legacy alias is never required: its canonical name carries the requirement.
        required = "1" if param.required and name == option.name else "0"
        element = etree.SubElement(parameters, "parameter", name=name, unique="0", required=required, **extra)
        etree.SubElement(element, "getopt", mixed=option.mixed())
        content = etree.SubElement(element, "content", type=_content_type(param))
        if param.default is not None:
            content.set("default", param.default)
        for choice in param.choices:
            etree.SubElement(content, "option", value=choice)
        text = param.shortdesc + (f" (ignored: {option.ignored})" if option.ignored else "")
        etree.SubElement(element, "shortdesc", lang="en").text = text

    for option in agent.options:
        if option.name in ("help", "version"):
            continue
        extra = {"obsoletes": option.aliases[0]} if option.aliases else {}
        add(option.name, option, **extra)
        for alias in option.aliases:
            add(alias, option, deprecated="1")
    actions = etree.SubElement(root, "actions")
    for name in ("on", "off", "reboot", "status", "monitor", "metadata", "validate-all"):
        # 'on' is not automatic: Pacemaker must not unfence with this agent unless told to.
        etree.SubElement(actions, "action", name=name, **({"automatic": "0"} if name == "on" else {}))
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def help_text(agent: FenceAgent) -> str:
    """Usage text in fence-agents' layout."""
    lines = ["Usage:", f"\t{agent.name} [options]", "Options:"]
    for option in agent.options:
        param = option.param
        desc = param.shortdesc
        if param.choices:
            desc += f" ({'|'.join(param.choices)})"
        if param.default is not None and not param.private and param.default not in ("", "0") \
                and not option.is_flag:
            desc += f" (default {param.default})"
        if option.ignored:
            desc += f" [ignored: {option.ignored}]"
        lines.append(f"   {option.mixed():<30} {desc}")
    lines.append("")
    lines.append("With no options, key=value lines are read from stdin (as pacemaker-fenced sends them).")
    return "\n".join(lines) + "\n"
