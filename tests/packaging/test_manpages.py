# SPDX-License-Identifier: GPL-2.0-or-later
"""The man pages in the .debs are generated from each program's own description and say what it says.

packaging/tools/hamail-manpages runs at build time: every OCF agent's meta-data becomes
ocf_hamail_<agent>(7), every fence agent's -o metadata becomes <agent>(8), every admin command's
--help and its subcommands' --help become <command>(8) (hamail-galera), hamail-vbmc's --help becomes
hamail-vbmc(1) in the hamail-vbmc package.  Here the pages are taken from the built packages, rendered
with man, and compared with what the checkout's programs print now: a parameter, option or action
that the program has and its page lacks fails, and so does a page groff warns about (lintian's check).
The rpm ships the same pages (test_rpm.py compares them with these).
"""

import gzip
import re

import pytest
from lxml import etree

from packaging_helpers import (CLEAN_ENV, ROOT, checked, checkout_files, product_man_pages, render_man,
                               vbmc_man_pages, version)


def words(text):
    """Text with every run of whitespace removed: for finding a value wherever man broke the line."""
    return re.sub(r"\s+", "", text)


def sections(text):
    """{heading: body} of a rendered man page (headings are the lines that start at column 0)."""
    found, current = {}, None
    for line in text.splitlines()[1:-1]:  # without the header and footer lines
        if line and not line[0].isspace():
            current = line.strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {heading: "\n".join(body) for heading, body in found.items()}


def headed(body, name):
    """True when a section body has an entry headed ``name``: at the heading indentation (7 columns), alone
    on its line or (.TP with a short name) followed on the same line by its text."""
    return any(re.match(rf" {{7}}{re.escape(name)}( |$)", line) for line in body.splitlines())


@pytest.fixture(scope="module")
def pages(deb, vbmc_deb, tmp_path_factory):
    """{installed path without .gz: (rendered text, groff warnings)} of every man page in both .debs."""
    rendered = {}
    for package in (deb, vbmc_deb):
        tree = tmp_path_factory.mktemp(package.stem)
        checked(["dpkg-deb", "-x", str(package), str(tree)])
        for path in sorted(tree.glob("usr/share/man/*/*")):
            plain = tree / "plain" / path.name.removesuffix(".gz")
            plain.parent.mkdir(exist_ok=True)
            plain.write_bytes(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
            rendered["/" + str(path.relative_to(tree)).removesuffix(".gz")] = render_man(plain)
    return rendered


def metadata(argv):
    """The parsed XML a checkout program prints for argv."""
    return etree.fromstring(checked(["/usr/bin/python3", *argv]).stdout.encode())


def test_each_package_ships_the_pages_of_its_own_programs(deb, vbmc_deb):
    def listing(package):
        lines = checked(["dpkg-deb", "-c", str(package)]).stdout.splitlines()
        return {line.split()[-1][1:] for line in lines if "/usr/share/man/man" in line and not line.endswith("/")}
    assert listing(deb) == {page + ".gz" for page in product_man_pages()}
    assert listing(vbmc_deb) == {page + ".gz" for page in vbmc_man_pages()}
    assert checkout_files("agents") and checkout_files("fence")


def test_pages_render_without_groff_warnings(pages):
    assert sorted(pages) == sorted(product_man_pages() + vbmc_man_pages())
    warned = {path: warnings for path, (_, warnings) in pages.items() if warnings.strip()}
    assert warned == {}


def test_pages_carry_the_version(pages):
    for path, (text, _) in pages.items():
        assert f"hamail {version()}" in text.splitlines()[-1], path


@pytest.mark.parametrize("agent", checkout_files("agents"))
def test_ocf_page_says_what_the_agent_meta_data_says(pages, agent):
    text, _ = pages[f"/usr/share/man/man7/ocf_hamail_{agent}.7"]
    body = sections(text)
    root = metadata([str(ROOT / "agents" / agent), "meta-data"])
    assert " ".join(body["NAME"].split()) == f"ocf_hamail_{agent} - {' '.join(root.findtext('shortdesc').split())}"
    assert words(root.findtext("longdesc")) in words(body["DESCRIPTION"])
    for parameter in root.iterfind("parameters/parameter"):
        name = parameter.get("name")
        assert headed(body["SUPPORTED PARAMETERS"], name), name
        default = parameter.find("content").get("default")
        if default is not None:
            assert words(f'default "{default}"') in words(body["SUPPORTED PARAMETERS"]), (name, default)
    for action in root.iterfind("actions/action"):
        assert headed(body["SUPPORTED ACTIONS"], action.get("name")), action.get("name")
        assert f"timeout: {action.get('timeout')}." in " ".join(body["SUPPORTED ACTIONS"].split())
    # The examples name the agent and set every required parameter (pcs runs them in test_debian_root.py).
    required = [p.get("name") for p in root.iterfind("parameters/parameter") if p.get("required") == "1"]
    for heading in ("EXAMPLE CRM SHELL", "EXAMPLE PCS"):
        assert f"ocf:hamail:{agent}" in body[heading]
        for name in required:
            assert f"{name}=" in body[heading], (heading, name)


def test_fence_page_says_what_the_agent_metadata_says(pages):
    for agent in checkout_files("fence"):
        text, _ = pages[f"/usr/share/man/man8/{agent}.8"]
        body = sections(text)
        root = metadata([str(ROOT / "fence" / agent), "-o", "metadata"])
        assert " ".join(body["NAME"].split()) == f"{agent} - {root.get('shortdesc')}"
        for parameter in root.iterfind("parameters/parameter"):
            assert headed(body["STDIN PARAMETERS"], parameter.get("name")), parameter.get("name")
            getopt = parameter.find("getopt")
            if getopt is not None:
                assert headed(body["PARAMETERS"], getopt.get("mixed")), getopt.get("mixed")
        for action in root.iterfind("actions/action"):
            assert headed(body["ACTIONS"], action.get("name")), action.get("name")


def test_vbmc_page_lists_every_option_of_its_help(pages):
    text, _ = pages["/usr/share/man/man1/hamail-vbmc.1"]
    body = sections(text)
    help_text = checked(["/usr/bin/python3", str(ROOT / "lab" / "hamail-vbmc"), "--help"],
                        env={**CLEAN_ENV, "COLUMNS": "1000"}).stdout
    options = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", help_text.split("\n\n", 1)[1]))
    assert {"--help", "--port", "--stop"} <= options
    listed = " ".join(body["OPTIONS"].split())
    missing = [option for option in sorted(options) if not re.search(rf"(?<![\w-]){option}(?![\w-])", listed)]
    assert missing == []
    assert "not for production nodes" in " ".join(body["DESCRIPTION"].split())



def help_of(*argv):
    """What a checkout program prints for --help (argv: the program, then its subcommand), on one wide line each."""
    return checked(["/usr/bin/python3", str(ROOT / "sbin" / argv[0]), *argv[1:], "--help"],
                   env={**CLEAN_ENV, "COLUMNS": "1000"}).stdout


def subsections(body):
    """{subheading: body} of a rendered section (subheadings, .SS, are the lines at 3 columns)."""
    found, current = {}, None
    for line in body.splitlines():
        if re.match(r"^ {3}\S", line):
            current = line.strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {heading: "\n".join(lines) for heading, lines in found.items()}


@pytest.mark.parametrize("command", checkout_files("sbin"))
def test_admin_page_lists_every_subcommand_option_and_exit_status(pages, command):
    text, _ = pages[f"/usr/share/man/man8/{command}.8"]
    body = sections(text)
    top = help_of(command)
    description = top.split("\n\n")[1]
    name, _, summary = " ".join(body["NAME"].split()).partition(" - ")
    assert name == command and summary and words(summary.lower()) in words(description.lower()), summary
    assert words(description) in words(body["DESCRIPTION"])
    # The subcommands (argparse lists them 4 columns in) each have a subsection with all their arguments.
    subcommands = re.findall(r"^    (\S+)", top, re.M)
    described = subsections(body["COMMANDS"])
    assert sorted(described) == sorted(subcommands) and subcommands
    for sub in subcommands:
        help_text = help_of(command, sub)
        usage = " ".join(help_text.split("\n\n")[0].split())
        assert usage.removeprefix("usage: ") in " ".join(body["SYNOPSIS"].split()), usage
        entries = re.findall(r"^  (\S+(?: \S+)*?)(?:  |$)", help_text.split("\n\n", 1)[1], re.M)
        missing = [entry for entry in entries if not headed(described[sub], entry)]
        assert entries and missing == [], missing
        assert words(help_text.split("\n\n")[1]) in words(described[sub])
    # Exit status: "N meaning" for each code the help's epilog names.
    codes = re.findall(r"(\d+) ([^;]+?)\.?(?:;|$)", top.rstrip().rsplit("\n\n", 1)[1].removeprefix("Exit status:"))
    listed = body["EXIT STATUS"]
    for code, meaning in codes:
        assert headed(listed, code) and words(meaning[1:]) in words(listed), (code, meaning)
    if command == "hamail-galera":
        assert subcommands == ["status"]
        assert {"RESOURCE", "--json", "--timeout SECONDS"} <= set(re.findall(
            r"^  (\S+(?: \S+)*?)(?:  |$)", help_of(command, "status"), re.M))
        assert [code for code, _ in codes] == ["0", "1", "2"]
        assert "Primary component runs" in " ".join(listed.split())
