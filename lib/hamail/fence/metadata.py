# SPDX-License-Identifier: GPL-2.0-or-later
"""What a fence agent publishes about itself, all from its option table: metadata XML in the fence-agents shape,
a man page (roff, section 8) and --help text.

Imported only by the metadata, manpage and help actions (see hamail.fence.agent.run): lxml and this module stay
out of every fencing and monitor call.
"""

from __future__ import annotations

from hamail.fence.agent import FenceAgent
from hamail.fence.options import FenceOption
from hamail.params import Kind, Param

__all__ = ["metadata_xml", "manpage", "help_text", "ACTION_TEXT"]

# What each action does, for the man page.
ACTION_TEXT = {
    "on": "Power the target on and verify it is on.",
    "off": "Power the target off and verify it is off (already off: nothing is sent).",
    "reboot": "Power off (verified), then on; with method=cycle a running target is power-cycled instead. "
              "Succeeds once the off is verified, even if the power-on fails (that is logged).",
    "status": "Print Status: ON (exit 0) or Status: OFF (exit 2).",
    "monitor": "Check that the device answers.",
    "list": "Print a notice and exit 0: each device fences one machine, there is no list (configure "
            "pcmk_host_list or pcmk_host_map).",
    "list-status": "As list.",
    "metadata": "Print the metadata XML that pacemaker-fenced, pcs and crmsh read.",
    "manpage": "Print this man page (roff).",
    "validate-all": "Check the options without reaching the device; every problem is reported in one line.",
    "diag": "Send a diagnostic interrupt (an NMI, chassis control 4), e.g. to take a crash dump of a hung "
            "machine. Not verified: what follows is the target's business. A machine that is off is left "
            "alone (exit 0).",
}


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
        extra = {"obsoletes": option.aliases[0]} if option.aliases else {}
        add(option.name, option, **extra)
        for alias in option.aliases:
            add(alias, option, deprecated="1")
    actions = etree.SubElement(root, "actions")
    for name in agent.actions():
        # 'on' is not automatic: Pacemaker must not unfence with this agent unless told to.
        etree.SubElement(actions, "action", name=name, **({"automatic": "0"} if name == "on" else {}))
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


HELP_WIDTH = 110


def help_text(agent: FenceAgent) -> str:
    """Usage text in fence-agents' layout (descriptions wrapped under their option)."""
    import textwrap  # help only

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
        mixed = option.mixed()
        text = textwrap.wrap(desc, HELP_WIDTH, initial_indent=" " * 34, subsequent_indent=" " * 34,
                             break_on_hyphens=False, break_long_words=False)
        if len(mixed) <= 30:
            text[0] = f"   {mixed:<30} {text[0][34:]}"
        else:  # an over-long spelling takes the first line for itself
            text.insert(0, f"   {mixed}")
        lines.extend(text)
    lines.append("")
    lines.append("With no options, key=value lines are read from stdin (as pacemaker-fenced sends them).")
    return "\n".join(lines) + "\n"


def _roff(text: str) -> str:
    """Text safe in a roff line: backslashes and minus signs escaped, no line starting as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _option_text(option: FenceOption) -> str:
    """What the man page says about one option: description, accepted values, default, whether ignored."""
    param = option.param
    parts = [param.shortdesc.rstrip(".") + "."]
    if param.longdesc:
        parts.append(param.longdesc)
    if param.choices:
        parts.append(f"One of: {', '.join(param.choices)}.")
    if param.default is not None and not param.private and "Default" not in param.shortdesc:
        parts.append(f"Default: {param.default}.")
    if param.required:
        parts.append("Required.")
    if option.ignored:
        parts.append(f"Accepted for compatibility and ignored: {option.ignored}.")
    return " ".join(parts)


def manpage(agent: FenceAgent) -> str:
    """The agent's man page (section 8, roff -man), from the same table as its metadata."""
    name = agent.name
    # .nh .ad l: option names and key=value text must not be hyphenated nor stretched.
    out = [f'.TH {name.upper()} 8 "" "{name} {agent.version}" "System Administration"', ".nh", ".ad l",
           ".SH NAME", f"{_roff(name)} \\- {_roff(agent.shortdesc)}",
           ".SH SYNOPSIS", f".B {_roff(name)}", "[\\fIOPTION\\fR]...", ".PP",
           "With no options, key=value lines are read from standard input, as pacemaker\\-fenced sends them: "
           "see \\fBSTDIN PARAMETERS\\fR.",
           ".SH DESCRIPTION", _roff(agent.longdesc),
           ".SH OPTIONS"]
    for option in agent.options:
        value = "" if option.is_flag else f"=\\fI{_roff(option.placeholder or 'value')}\\fR"
        spellings = [f"\\fB\\-{option.short}\\fR"] if option.short else []
        if option.long:
            spellings.append(f"\\fB\\-\\-{_roff(option.long)}\\fR{value}")
        out += [".TP", ", ".join(spellings), _roff(_option_text(option))]
    out += [".SH STDIN PARAMETERS",
            "One name=value per line; blank lines and lines starting with # are skipped; unknown names are "
            "ignored (pacemaker\\-fenced passes some of its own). Booleans take 1/0, yes/no, true/false, on/off.",
            ]
    for option in agent.options:
        if option.name in ("help", "version"):
            continue
        out += [".TP", f"\\fB{_roff(option.name)}\\fR", _roff(_option_text(option))]
        for alias in option.aliases:
            out += [".TP", f"\\fB{_roff(alias)}\\fR", _roff(f"Obsolete name of {option.name}.")]
    out.append(".SH ACTIONS")
    for action in agent.actions() + ("list", "list-status"):
        out += [".TP", f"\\fB{_roff(action)}\\fR", _roff(ACTION_TEXT[action])]
    out += [".SH EXIT STATUS",
            ".TP", "0", "Success; for status: the target is on.",
            ".TP", "1", _roff("Failure, with one line on standard error: \"<agent>: error: <kind>: <reason>\"; "
                              "kinds: configuration, unreachable, authentication, privilege, timeout, bmc, "
                              "unsupported, internal."),
            ".TP", "2", "status: the target is off.",
            ".SH SECURITY",
            _roff("Passwords and keys are never passed to another process nor written to a log; give them on "
                  "standard input (pcs and pacemaker\u2011fenced do) or through password_script rather than on "
                  "the command line, which other users can read.").replace("\u2011", "\\-"),
            ".SH SEE ALSO",
            ".BR stonith_admin (8),", ".BR pcs (8),", ".BR fence_ipmilan (8)"]
    return "\n".join(out) + "\n"
