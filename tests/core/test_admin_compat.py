# SPDX-License-Identifier: GPL-2.0-or-later
"""What an admin moving a working heartbeat cluster to hamail relies on from crmsh 4.4 and pcs 0.11 (issue 13):

- crmsh refuses a second primitive with the same value of a parameter its agent marks unique="1" (it ignores
  OCF 1.1's unique-group): ours mark unique="1" wherever they declare a unique-group, as upstream does;
- pcs warns about a deprecated parameter declared the OCF 1.1 way (<deprecated><replaced-with/>);
- `crm resource trace` (trace_ra) and pcs's trace_ra/trace_file work as with ocf-shellfuncs agents: the trace
  lands in /var/lib/heartbeat/trace_ra/<type>/<rsc>.<action>.<date>, pcs accepts both parameters.

The metadata stays valid for ocf-tester (`xmllint --valid`): its document type is ra-api-1.dtd plus exactly
OCF 1.1's additions, checked here against the installed DTD. The tests on the lab's 1-node cluster run what an
admin types (crm, pcs) inside the node: they are in tests/pacemaker/test_admin_compat_live.py.
"""

from __future__ import annotations

import subprocess

import pytest
from lxml import etree

from testlib import AGENTS, UPSTREAM, run_agent

from hamail.ocf.metadata import ActionSpec, AgentSpec, build_metadata
from hamail.params import Kind, Param, ParamTable

ALL = sorted(p.name for p in AGENTS.iterdir() if p.is_file())
RA_API_DTD = "/usr/share/resource-agents/ra-api-1.dtd"
PCS_RNG = "/usr/share/pcs/data/ocf-1.1.rng"
# Parameters ours declare unique where upstream declares nothing, each with the reason.
STRICTER_THAN_UPSTREAM: dict[str, dict[str, str]] = {}


def metadata(name: str) -> bytes:
    """agents/<name> meta-data."""
    result = run_agent(name, "meta-data")
    assert result.returncode == 0, result.stderr
    return result.stdout.encode()


def upstream_metadata(name: str) -> etree._Element:
    """The upstream twin's meta-data, parsed."""
    result = subprocess.run([UPSTREAM[name], "meta-data"], capture_output=True, timeout=60,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf"})
    assert result.returncode == 0, result.stderr
    return etree.fromstring(result.stdout)


# ---------------------------------------------------------------- the document type: ra-api-1.dtd + OCF 1.1

def _content(decl) -> str:
    """An element's content model as DTD text, from lxml's declaration tree."""
    if decl is None:
        return ""
    occur = {"once": "", "opt": "?", "mult": "*", "plus": "+"}[decl.occur]
    if decl.type == "pcdata":
        return "#PCDATA" + occur
    if decl.type == "element":
        return decl.name + occur
    return f"({_content(decl.left)}{',' if decl.type == 'seq' else '|'}{_content(decl.right)}){occur}"


def declarations(dtd) -> dict:
    """element -> (type, content model, {attribute: (type, default kind, default, allowed values)})."""
    return {e.name: (e.type, _content(e.content),
                     {a.name: (a.type, a.default, a.default_value, tuple(a.values())) for a in e.attributes()})
            for e in dtd.elements()}


@pytest.mark.parametrize("name", ALL)
def test_the_document_type_is_ra_api_1_dtd_plus_exactly_the_ocf_1_1_additions(name):
    """The internal DTD that `xmllint --valid` (ocf-tester) checks against is the installed ra-api-1.dtd with
    only <deprecated> (and its children), unique-group, reloadable and the reload-agent action added."""
    doc = etree.fromstring(metadata(name))  # referenced while its DTD is read: lxml does not keep it alive
    ours = declarations(doc.getroottree().docinfo.internalDTD)
    expected = declarations(etree.DTD(RA_API_DTD))
    kind, _, attributes = expected["parameter"]
    expected["parameter"] = (kind, "(longdesc+,(shortdesc+,(deprecated?,content)))",
                             {**attributes, "unique-group": ("cdata", "implied", None, ()),
                              "reloadable": ("enumeration", "none", "0", ("0", "1"))})
    kind, content, attributes = expected["action"]
    actions = attributes["name"][3]
    after = actions.index("reload") + 1
    with_reload_agent = actions[:after] + ("reload-agent",) + actions[after:]
    expected["action"] = (kind, content, {**attributes, "name": attributes["name"][:3] + (with_reload_agent,)})
    expected["deprecated"] = ("element", "(replaced-with*,desc*)", {})
    expected["replaced-with"] = ("empty", "", {"name": ("cdata", "required", None, ())})
    expected["desc"] = ("any", "", {"lang": ("nmtoken", "implied", None, ())})
    assert ours == expected


@pytest.mark.parametrize("name", ALL)
def test_without_the_ocf_1_1_additions_the_metadata_is_valid_against_the_installed_ra_api_1_dtd(name):
    # without its own DOCTYPE (serializing the root element leaves it out): only the installed DTD applies
    doc = etree.fromstring(etree.tostring(etree.fromstring(metadata(name))))
    assert doc.getroottree().docinfo.internalDTD is None
    for element in doc.xpath("//parameter/deprecated | //action[@name='reload-agent']"):
        element.getparent().remove(element)
    for param in doc.iter("parameter"):
        for attribute in ("unique-group", "reloadable"):
            param.attrib.pop(attribute, None)
    dtd = etree.DTD(RA_API_DTD)
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()


# ---------------------------------------------------------------- unique="1" beside unique-group

@pytest.mark.parametrize("name", ALL)
def test_every_parameter_says_unique_exactly_when_it_has_a_unique_group(name):
    params = etree.fromstring(metadata(name)).findall("parameters/parameter")
    assert params
    wrong = [(p.get("name"), p.get("unique"), p.get("unique-group")) for p in params
             if p.get("unique") != ("1" if p.get("unique-group") else "0")]
    assert wrong == []


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_unique_where_upstream_is(name):
    """What upstream marks unique (unique="1" or a unique-group) is unique="1" in ours, so crmsh guards it; what
    ours marks unique beyond that is listed in STRICTER_THAN_UPSTREAM with the reason."""
    theirs = {p.get("name") for p in upstream_metadata(name).iterfind("parameters/parameter")
              if p.get("unique") == "1" or p.get("unique-group")}
    ours = {p.get("name") for p in etree.fromstring(metadata(name)).iterfind("parameters/parameter")
            if p.get("unique") == "1"}
    assert theirs <= ours, f"crmsh would not guard {sorted(theirs - ours)} of ocf:hamail:{name}"
    assert ours - theirs == set(STRICTER_THAN_UPSTREAM.get(name, {}))


# ---------------------------------------------------------------- deprecated parameters, the OCF 1.1 way

OLD_STYLE = AgentSpec(
    "Renamed", "1.0", "an agent that renamed parameters", "Parameters renamed over time.",
    ParamTable(Param("cidr_netmask", Kind.STRING, "prefix length"),
               Param("netmask", Kind.STRING, "old name of cidr_netmask", deprecated=True,
                     replaced_with="cidr_netmask"),
               Param("arp_interval", Kind.INTEGER, "no longer used", deprecated=True),
               Param("ip", Kind.STRING, "address", required=True, unique_group="address")),
    (ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20, interval=10)))


def pcs_view(xml: bytes, name: str = "Renamed"):
    """The parameters as pcs 0.11 itself loads them (its RNG check, OCF 1.1 parser and transformations)."""
    from pcs.lib.resource_agent import ocf_transform, pcs_transform
    from pcs.lib.resource_agent import xml as pcs_xml
    from pcs.lib.resource_agent.facade import ResourceAgentFacade
    from pcs.lib.resource_agent.types import ResourceAgentName
    agent = ResourceAgentName("ocf", "hamail", name)
    dom = pcs_xml._metadata_xml_to_dom(xml.decode())  # raises unless valid against ocf-1.1.rng
    parsed = pcs_transform.ocf_unified_to_pcs(
        ocf_transform.ocf_version_to_ocf_unified(pcs_xml.parse_metadata(agent, dom)))
    return ResourceAgentFacade(parsed)


def test_a_deprecated_parameter_carries_ocf_1_1_deprecated_and_stays_valid():
    xml = build_metadata(OLD_STYLE)
    # ocf-tester's check, with the real xmllint
    lint = subprocess.run(["xmllint", "--noout", "--valid", "-"], input=xml, capture_output=True)
    assert lint.returncode == 0, lint.stderr.decode()
    rng = etree.RelaxNG(etree.parse(PCS_RNG))
    assert rng.validate(etree.fromstring(xml)), rng.error_log
    params = {p.get("name"): p for p in etree.fromstring(xml).iterfind("parameters/parameter")}
    netmask = params["netmask"].find("deprecated")
    assert [(r.tag, dict(r.attrib)) for r in netmask] == [
        ("replaced-with", {"name": "cidr_netmask"}),
        ("desc", {"lang": "en"})]
    assert [r.tag for r in params["arp_interval"].find("deprecated")] == ["desc"]
    assert params["cidr_netmask"].find("deprecated") is None and params["ip"].find("deprecated") is None
    assert (params["ip"].get("unique"), params["ip"].get("unique-group")) == ("1", "address")

    facade = pcs_view(xml)
    seen = {p.name: (p.deprecated, p.deprecated_by) for p in facade.metadata.parameters}
    assert seen["netmask"] == (True, ["cidr_netmask"]) and seen["arp_interval"] == (True, [])
    assert seen["cidr_netmask"] == (False, [])
    from pcs.lib import validate
    warnings = [report.message.to_dto().payload for validator in facade.get_validators_deprecated_parameters()
                for report in validator.validate({"netmask": validate.ValuePair("24", "24")})]
    assert warnings == [{"option_name": "netmask", "replaced_by": ["cidr_netmask"], "option_type": "resource"}]


def test_ipaddr2_netmask_is_deprecated_for_pcs():
    facade = pcs_view(metadata("IPaddr2"), "IPaddr2")
    deprecated = {p.name: p.deprecated_by for p in facade.metadata.parameters if p.deprecated}
    assert deprecated == {"netmask": ["cidr_netmask"]}


@pytest.mark.parametrize("name", ALL)
def test_every_agent_offers_pcs_the_tracing_parameters(name):
    """pcs adds trace_ra/trace_file only to heartbeat and pacemaker agents: ours declare them themselves."""
    facade = pcs_view(metadata(name), name)
    params = {p.name: p for p in facade.metadata.parameters}
    assert params["trace_ra"].default == "0" and not params["trace_ra"].required
    assert "trace_file" in params and not params["trace_file"].required
    assert [p.name for p in facade.metadata.parameters].count("trace_ra") == 1


def test_an_agent_declaring_trace_ra_itself_keeps_its_own():
    spec = AgentSpec("SelfTraced", "1.0", "traces itself", "Declares trace_ra.",
                     ParamTable(Param("trace_ra", Kind.INTEGER, "own tracing level", default="0")),
                     (ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20)))
    params = [(p.get("name"), p.findtext("shortdesc")) for p in
              etree.fromstring(build_metadata(spec)).iterfind("parameters/parameter")]
    assert params == [("trace_ra", "own tracing level"),
                      ("trace_file", "Path to a file to store resource agent tracing log")]
