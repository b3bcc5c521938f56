# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail is GPL-2.0-or-later (as resource-agents and fence-agents), and every package says so and who answers for it.

The LICENSE file at the top of the checkout is the GPL version 2 text; the .debs carry a DEP-5
(machine-readable) copyright file, the rpms the SPDX `License:` and the text as %license.  The
Maintainer of debian/control is the one contact: the changelog, the copyright file's Upstream-Contact
and the rpms' Packager repeat it, and it names the project at an address that is not one of the
names reserved for examples (RFC 2606 / RFC 6761): a placeholder there is what was asked away.
"""

import gzip
import re

import pytest

from packaging_helpers import ROOT, checked, rpm_payload

GPL2 = "/usr/share/common-licenses/GPL-2"
DEP5_FORMAT = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
SPDX = "GPL-2.0-or-later"
# Host names reserved for documentation and testing, which no project's mail can reach.
RESERVED = re.compile(r"(^|\.)(example|invalid|test|localhost|local)$|(^|\.)example\.(com|net|org)$")


def deb822(text):
    """Paragraphs of a deb822 file as {field: value}, continuation lines joined with newlines."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields, name = {}, None
        for line in block.splitlines():
            if line.startswith((" ", "\t")):
                fields[name] += "\n" + line.strip()
            else:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        paragraphs.append(fields)
    return paragraphs


def deb_file(package, path, tmp_path):
    """The bytes of one file of a .deb."""
    tree = tmp_path / package.stem
    checked(["dpkg-deb", "-x", str(package), str(tree)])
    return (tree / path.lstrip("/")).read_bytes()


def rpm_query(rpm_file, *args):
    """Lines printed by `rpm -qp ARGS FILE`, which must succeed."""
    return checked(["rpm", "-qp", *args, str(rpm_file)]).stdout.splitlines()


def test_license_file_is_the_gpl_version_2():
    text = (ROOT / "LICENSE").read_bytes()
    assert text == open(GPL2, "rb").read()
    assert b"GNU GENERAL PUBLIC LICENSE\n                       Version 2, June 1991" in text


@pytest.mark.parametrize("which", ["deb", "vbmc_deb"])
def test_deb_copyright_is_machine_readable_gpl2_or_later(request, which, tmp_path):
    package = request.getfixturevalue(which)
    name = checked(["dpkg-deb", "-f", str(package), "Package"]).stdout.strip()
    text = deb_file(package, f"/usr/share/doc/{name}/copyright", tmp_path).decode()
    assert text == (ROOT / "packaging" / "debian" / "copyright").read_text()
    header, *rest = deb822(text)
    assert header["Format"] == DEP5_FORMAT and header["Upstream-Name"] == "hamail"
    files = [p for p in rest if "Files" in p]
    assert [(p["Files"], p["License"]) for p in files] == [("*", "GPL-2+")]
    assert files[0]["Copyright"].strip()
    licences = {p["License"].split("\n", 1)[0]: p["License"] for p in rest if "Files" not in p}
    assert set(licences) == {"GPL-2+"}
    assert "either version 2 of the License, or\n(at your option) any later version" in licences["GPL-2+"]
    assert GPL2 in licences["GPL-2+"]


def test_rpm_declares_the_licence_and_ships_its_text(rpm):
    assert rpm_query(rpm, "--qf", "%{LICENSE}") == [SPDX]
    licence_files = rpm_query(rpm, "--licensefiles")
    assert len(licence_files) == 1 and re.fullmatch(r"/usr/share/licenses/hamail[^/]*/LICENSE", licence_files[0])
    assert rpm_payload(rpm)[licence_files[0]] == (ROOT / "LICENSE").read_bytes()


def test_spec_and_control_say_the_same_licence():
    spec = (ROOT / "packaging" / "hamail.spec").read_text()
    assert re.findall(r"^License:\s*(.+)$", spec, re.M) == [SPDX]
    assert re.findall(r"^%license\s+(.+)$", spec, re.M) == ["LICENSE"]


def test_every_contact_field_names_the_project_at_a_real_address(deb, vbmc_deb, rpm, vbmc_rpm, tmp_path):
    control = (ROOT / "packaging" / "debian" / "control").read_text()
    maintainer = re.search(r"^Maintainer: (.+)$", control, re.M).group(1)
    contacts = {
        "hamail Maintainer": checked(["dpkg-deb", "-f", str(deb), "Maintainer"]).stdout.strip(),
        "hamail-vbmc Maintainer": checked(["dpkg-deb", "-f", str(vbmc_deb), "Maintainer"]).stdout.strip(),
        "Upstream-Contact": deb822((ROOT / "packaging" / "debian" / "copyright").read_text())[0]["Upstream-Contact"],
        "rpm Packager": rpm_query(rpm, "--qf", "%{PACKAGER}")[0],
        "vbmc rpm Packager": rpm_query(vbmc_rpm, "--qf", "%{PACKAGER}")[0],
    }
    changelog = gzip.decompress(deb_file(deb, "/usr/share/doc/hamail/changelog.gz", tmp_path)).decode()
    contacts["changelog trailer"] = re.search(r"^ -- (.+?)  ", changelog, re.M).group(1)
    assert contacts == {field: maintainer for field in contacts}
    name, address = re.fullmatch(r"(.+) <([^<>@\s]+@[^<>@\s]+)>", maintainer).groups()
    assert "hamail" in name.lower(), name
    host = address.split("@")[1].lower()
    assert not RESERVED.search(host), f"{address} is at a name reserved for examples"
    assert not re.search(r"noreply|no-reply|placeholder|changeme", address, re.I), address


def test_reserved_name_pattern_catches_the_placeholders():
    for host in ("example.org", "example.com", "lists.hamail.invalid", "h.example", "x.test", "localhost"):
        assert RESERVED.search(host), host
    for host in ("hamail-project.org", "lists.clusterlabs.org", "examples.org"):
        assert not RESERVED.search(host), host


def test_every_source_file_names_its_licence():
    """SPDX headers, as resource-agents and fence-agents carry them: every Python file, script and Makefile."""
    import subprocess
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout
    missing = []
    for rel in listed.split():
        path = ROOT / rel
        if not path.is_file() or path.is_symlink():
            continue
        first = path.read_bytes()[:200].split(b"\n")[0]
        source = rel.endswith((".py", ".sh")) or rel == "Makefile" or (
            first.startswith(b"#!") and (b"python" in first or b"sh" in first))
        if source and f"SPDX-License-Identifier: {SPDX}" not in path.read_text()[:500]:
            missing.append(rel)
    assert missing == []
