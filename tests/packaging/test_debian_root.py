# SPDX-License-Identifier: GPL-2.0-or-later
"""The .debs install with apt into a clean Debian root, work there as an admin uses them, and purge to nothing.

mmdebstrap builds a minimal root of this machine's release from its apt sources (the same archive
apt-get uses here): apt, pacemaker, pcs and man-db installed, and the packages that hamail and
hamail-vbmc depend on (read from the built .debs) downloaded but not installed, so that apt itself
must resolve them from the .debs' Depends.  Everything in the root then runs under chroot in
namespaces of its own: a mount namespace (proc, dev and sys are mounted there only) and an empty
network namespace, so the install uses nothing but what the root already holds.

Inside: `apt-get install ./hamail_*.deb ./hamail-vbmc_*.deb`; crm_resource --show-metadata and pcs
resource describe for every agent; fence_ipmi -o metadata; hamail-galera status where no cluster
runs; man for every page; each page's pcs example accepted by pcs against an empty CIB file; and
`apt-get purge --autoremove` leaves the root's file list as it was before the install.  Building the
root takes under a minute here (most of it downloads): it is made afresh for every run rather than cached.
"""

import os
import pathlib
import re
import shlex
import subprocess
import tempfile

import pytest
from lxml import etree

from packaging_helpers import (CLEAN_ENV, GALERA_COMMAND, PRODUCT, VBMC, checked, checkout_files, run)

# The cluster tools an admin uses with hamail, and man to read its pages.
ROOT_PACKAGES = ["pacemaker", "pacemaker-cli-utils", "pcs", "man-db"]
# Not part of the file-list comparison: kernel file systems, scratch space, and the bookkeeping that
# apt, dpkg, man-db and ldconfig keep of what is installed (it records the purge, as it should).
VOLATILE = ("proc", "dev", "sys", "run", "tmp", "var/tmp", "var/lib/apt", "var/lib/dpkg", "var/cache/apt",
            "var/cache/debconf", "var/cache/man", "var/cache/ldconfig", "var/log", "etc/ld.so.cache")

# Mounts proc, dev and sys into the root in the mount namespace unshare made (they end with it), then
# runs the command under chroot.
CHROOT_SCRIPT = r'''
set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
exec chroot "$root" "$@"
'''


def apt_sources():
    """This machine's apt source files (deb822 or one-line), the ones mmdebstrap copies into the root."""
    candidates = [pathlib.Path("/etc/apt/sources.list")]
    candidates += sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.list"))
    candidates += sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources"))
    used = [str(path) for path in candidates if path.is_file()
            and [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]]
    assert used, "no apt sources on this machine"
    return used


def release():
    """This machine's Debian codename (bookworm), the suite of the root."""
    text = pathlib.Path("/etc/os-release").read_text()
    return re.search(r"^VERSION_CODENAME=(\S+)$", text, re.M).group(1)


def depends_of(package_file, field_name="Depends"):
    """Package names a .deb depends on (or recommends: field_name), first alternative, no versions."""
    field = checked(["dpkg-deb", "-f", str(package_file), field_name]).stdout
    return [d.strip().split("|")[0].split()[0].split(":")[0] for d in field.split(",") if d.strip()]


def root_files(root):
    """Every path in the root except VOLATILE ones, relative to it."""
    paths = set()
    for directory, subdirs, files in os.walk(root):
        rel = os.path.relpath(directory, root)
        rel = "" if rel == "." else rel
        subdirs[:] = [d for d in subdirs if os.path.join(rel, d) not in VOLATILE]
        paths |= {os.path.join(rel, name) for name in subdirs + files if os.path.join(rel, name) not in VOLATILE}
    return paths


def installed_packages(in_root):
    """Names of the packages installed in the root."""
    proc = in_root("dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n")
    assert proc.returncode == 0, proc.stderr
    return {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("ii ")}


def no_mounts_under(root):
    """True when nothing is mounted below root."""
    with open("/proc/self/mountinfo") as mountinfo:
        return not [line for line in mountinfo if f" {root}/" in line or f" {root} " in line]


@pytest.fixture(scope="module")
def debian_root(deb, vbmc_deb):
    """(root, in_root, (files, packages) before the install) of a fresh minimal Debian root with both .debs
    apt-installed."""
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap in root mode, mount and chroot need root")
    assert subprocess.run(["which", "mmdebstrap"], capture_output=True, env=CLEAN_ENV).returncode == 0, \
        "mmdebstrap is missing: run scripts/ensure-deps"
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="hamail-debroot-", dir="/var/tmp"))
    root = workdir / "root"
    try:
        dependencies = sorted({d for p in (deb, vbmc_deb) for d in depends_of(p)} - {PRODUCT, VBMC})
        assert {"python3-lxml", "python3-pyghmi", "python3-daemon"} <= set(dependencies), dependencies
        # apt installs Recommends too, as for an admin: fetched here, since the install runs without network
        dependencies += sorted({d for p in (deb, vbmc_deb) for d in depends_of(p, "Recommends")} - set(dependencies))
        download = ('APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get install -y -q --download-only '
                    + " ".join(dependencies))
        built = run(["mmdebstrap", "--variant=apt", "--include=" + ",".join(ROOT_PACKAGES),
                     "--skip=cleanup/apt",  # keep the package lists and the downloaded .debs for apt inside
                     "--customize-hook=" + download, release(), str(root), *apt_sources()], timeout=1200)
        assert built.returncode == 0, f"mmdebstrap exited {built.returncode}\n{built.stderr[-4000:]}"

        def in_root(*argv, stdin=None):
            """Run argv under chroot in the root, without network (exit status not checked)."""
            env = {**CLEAN_ENV, "DEBIAN_FRONTEND": "noninteractive", "MANWIDTH": "80"}
            return run(["unshare", "--mount", "--net", "--fork", "sh", "-c", CHROOT_SCRIPT, "sh", str(root), *argv],
                       env=env, input=stdin)

        before = root_files(root), installed_packages(in_root)
        for package in (deb, vbmc_deb):
            (root / "tmp" / package.name).write_bytes(package.read_bytes())
        installed = in_root("apt-get", "install", "-y", "-q", f"/tmp/{deb.name}", f"/tmp/{vbmc_deb.name}")
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        yield root, in_root, before
    finally:
        assert no_mounts_under(workdir), f"something is still mounted under {workdir}"
        subprocess.run(["rm", "-rf", "--one-file-system", str(workdir)], check=True, timeout=300)


def in_root_checked(in_root, *argv, stdin=None):
    """Run argv in the root; it must succeed."""
    proc = in_root(*argv, stdin=stdin)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_apt_installed_both_packages_and_their_dependencies(debian_root, deb):
    _, in_root, _ = debian_root
    status = in_root_checked(in_root, "dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n").stdout
    installed = dict(line.split(None, 1) for line in status.splitlines())
    for package in [PRODUCT, VBMC] + depends_of(deb):
        assert installed.get(package, "").strip() == "ii", package


@pytest.mark.parametrize("agent", checkout_files("agents"))
def test_crm_resource_and_pcs_describe_the_agent(debian_root, agent):
    _, in_root, _ = debian_root
    xml = in_root_checked(in_root, "crm_resource", "--show-metadata", f"ocf:hamail:{agent}").stdout
    metadata = etree.fromstring(xml.encode())
    assert metadata.get("name") == agent
    described = in_root_checked(in_root, "pcs", "resource", "describe", f"ocf:hamail:{agent}").stdout
    shortdesc = " ".join(metadata.findtext("shortdesc").split())
    assert described.startswith(f"ocf:hamail:{agent} - {shortdesc}"), described[:300]
    for parameter in metadata.iterfind("parameters/parameter"):
        if parameter.find("deprecated") is None:  # pcs lists deprecated parameters only with --full
            # "  name: text", or "  name (required) (unique group: x): text"
            assert re.search(rf"^  {re.escape(parameter.get('name'))}( \([^)]*\))*: ", described, re.M), \
                parameter.get("name")


def test_fence_agents_print_their_metadata(debian_root):
    _, in_root, _ = debian_root
    for agent in checkout_files("fence"):
        xml = in_root_checked(in_root, f"/usr/sbin/{agent}", "-o", "metadata").stdout
        assert etree.fromstring(xml.encode()).get("name") == agent


def test_galera_command_without_a_cluster_says_so_in_one_line(debian_root):
    _, in_root, _ = debian_root
    # Pacemaker is installed in the root but not running (and the root has a network namespace of its
    # own, so no cluster of this machine answers either): the cluster cannot be read.
    proc = in_root(os.path.basename(GALERA_COMMAND), "status")  # found through PATH, as an admin runs it
    assert proc.returncode == 2, f"exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hamail-galera: ") and proc.stderr.endswith("\n"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_galera_command_status_help(debian_root):
    _, in_root, _ = debian_root
    proc = in_root_checked(in_root, os.path.basename(GALERA_COMMAND), "status", "--help")
    assert proc.stdout.startswith("usage: hamail-galera status"), proc.stdout[:300]
    for option in ("RESOURCE", "--json", "--timeout"):
        assert option in proc.stdout, option


def man_pages():
    """(man's argument, section) of every page the two packages ship."""
    return ([(f"ocf_hamail_{agent}", "7") for agent in checkout_files("agents")]
            + [(command, "8") for command in checkout_files("fence") + checkout_files("sbin")]
            + [("hamail-vbmc", "1")])


@pytest.mark.parametrize("page,section", man_pages())
def test_man_shows_the_page(debian_root, page, section):
    _, in_root, _ = debian_root
    shown = in_root_checked(in_root, "man", "-P", "cat", page).stdout
    assert shown.startswith(f"{page.upper()}({section})"), shown[:200]
    assert re.search(rf"^NAME\n       {re.escape(page)} - \S", shown, re.M), shown[:400]
    located = in_root_checked(in_root, "man", "-w", page).stdout.strip()
    assert located == f"/usr/share/man/man{section}/{page}.{section}.gz"


def pcs_example(page_text):
    """The pcs command of a page's EXAMPLE PCS section, its continuation lines joined."""
    section = page_text.split("\nEXAMPLE PCS\n", 1)[1].split("\nFILES\n", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.startswith("pcs resource create "))
    command = []
    for line in lines[start:]:
        command.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    return " ".join(command)


@pytest.mark.parametrize("agent", checkout_files("agents"))
def test_pcs_accepts_the_example_of_the_man_page(debian_root, agent):
    _, in_root, _ = debian_root
    command = shlex.split(pcs_example(in_root_checked(in_root, "man", "-P", "cat", f"ocf_hamail_{agent}").stdout))
    assert command[:4] == ["pcs", "resource", "create", f"p_{agent}"], command
    # pcs -f edits a CIB file instead of a running cluster; the CIB starts empty.
    in_root_checked(in_root, "sh", "-c", 'cibadmin --empty > /tmp/cib.xml && pcs -f /tmp/cib.xml "$@"', "sh",
                    *command[1:])
    cib = etree.fromstring(in_root_checked(in_root, "cat", "/tmp/cib.xml").stdout.encode())
    primitive = cib.find(f".//primitive[@id='p_{agent}']")
    assert primitive is not None and primitive.get("provider") == "hamail" and primitive.get("type") == agent


def test_purge_leaves_nothing_behind(debian_root):
    root, in_root, (files_before, packages_before) = debian_root
    assert (root / "usr/lib/ocf/resource.d/hamail").is_dir()
    assert (root / "usr/lib/python3/dist-packages/hamail").is_dir()
    assert list((root / "usr/lib/python3/dist-packages/hamail").rglob("*.pyc")), "py3compile did not run at install"
    in_root_checked(in_root, "apt-get", "purge", "-y", "-q", "--autoremove", PRODUCT, VBMC)
    for package in (PRODUCT, VBMC):
        # dpkg forgets a purged package (nothing printed) or keeps it as not-installed ("un"/"pn")
        status = in_root("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package).stdout.strip()
        assert status in ("", "un", "pn"), (package, status)
    files_after = root_files(root)
    assert sorted(files_before - files_after) == []
    # What is new since before the install may only belong to dependencies apt keeps by its own policy
    # (python3-setuptools stays while an installed package suggests it): their files, and the byte code
    # their postinst compiled into __pycache__ beside them.  Nothing of hamail's.
    kept = sorted(installed_packages(in_root) - packages_before)
    assert not {PRODUCT, VBMC} & set(kept)
    owned = set()
    for package in kept:
        owned |= {line.lstrip("/") for line in in_root_checked(in_root, "dpkg", "-L", package).stdout.splitlines()}
    new = files_after - files_before
    unexplained = sorted(p for p in new if p not in owned
                         and not ("__pycache__" in p.split("/") and p.split("/__pycache__")[0] in owned))
    assert unexplained == []
    assert not [p for p in new if "hamail" in p]
