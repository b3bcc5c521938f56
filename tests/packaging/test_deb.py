# SPDX-License-Identifier: GPL-2.0-or-later
"""The .debs built by packaging/build-deb install on this machine, every agent works from them, and they remove cleanly.

build-deb makes two packages: hamail (library, OCF agents, fence agents, admin commands) and hamail-vbmc (the lab's
virtual BMC, which the product must neither ship nor depend on).

The lab harness may have symlinked the checkout into the places the package installs to
(/usr/lib/ocf/resource.d/hamail -> agents/, /usr/sbin/fence_X -> fence/fence_X): those symlinks are
saved, removed for the install and restored afterwards, also when a test fails.  Nothing here needs a
running cluster (`crm_resource --show-metadata` runs the agent locally).
"""

import contextlib
import hashlib
import json
import os
import pathlib
import re
import shutil

import pytest
from lxml import etree

from packaging_helpers import (CLEAN_ENV, GALERA_COMMAND, PRODUCT, ROOT, STATUS_SCHEMA, VBMC, VBMC_MODULE,
                               VBMC_PROGRAM, admin_executables, build, checked, checkout_files, expected_executables,
                               is_vbmc_path, library_files, run, vbmc_executables, version)

PACKAGES = (PRODUCT, VBMC)
OCF_DIR = pathlib.Path("/usr/lib/ocf/resource.d/hamail")
DIST_PACKAGES = pathlib.Path("/usr/lib/python3/dist-packages")
SITE_DIR = DIST_PACKAGES / "hamail"
VBMC_MODULE_PATH = DIST_PACKAGES / VBMC_MODULE

def deb_modes(deb_file):
    """{absolute path: mode as dpkg-deb -c prints it, "-rwxr-xr-x"} for every entry the .deb ships."""
    modes = {}
    # dpkg-deb -c prints `mode owner size date time ./path`; our paths have no spaces.
    for line in checked(["dpkg-deb", "-c", str(deb_file)]).stdout.splitlines():
        fields = line.split()
        modes[fields[-1][1:].rstrip("/") or "/"] = fields[0]
    return modes


def deb_entries(deb_file):
    """(absolute path, is a directory) for every entry the .deb ships."""
    return [(path, mode.startswith("d")) for path, mode in deb_modes(deb_file).items()]


def deb_paths(deb_file):
    """Absolute paths the .deb ships, directories without their trailing slash."""
    return [path for path, _ in deb_entries(deb_file)]


def owned_paths(deb_file):
    """The shipped paths that belong to hamail alone: its files and its own directories, not /usr/sbin."""
    return [path for path, is_dir in deb_entries(deb_file) if not is_dir or "hamail" in path]


def depends(deb_file):
    """Package names in the .deb's Depends field, without versions or architecture qualifiers."""
    field = checked(["dpkg-deb", "-f", str(deb_file), "Depends"]).stdout
    return [d.strip().split(" ")[0].split(":")[0] for d in field.split(",") if d.strip()]


def sha256(path):
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def lab_symlinks_set_aside(paths):
    """Remove symlinks (the lab's links into a checkout) at ``paths`` and put them back afterwards."""
    saved = {}
    try:
        for path in sorted(paths, key=len):  # parents first: a linked directory hides its children
            if os.path.islink(path):
                saved[path] = os.readlink(path)
                os.unlink(path)
            elif os.path.exists(path) and not os.path.isdir(path):
                owner = run(["dpkg-query", "-S", path])
                assert owner.stdout.split(":")[0] in PACKAGES, (
                    f"{path} exists, is not a symlink and not from the {PACKAGES} packages; refusing to overwrite it")
        yield saved
    finally:
        for path, target in saved.items():
            if not os.path.lexists(path):
                os.symlink(target, path)


def purge():
    """Remove both packages with their configuration (hamail-vbmc first); fine when they are not installed."""
    return checked(["dpkg", "--purge", VBMC, PRODUCT])


def package_status(package):
    """dpkg's abbreviated status of a package ("ii" when installed), empty when dpkg does not know it."""
    return run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package]).stdout.strip()


@pytest.fixture(scope="module")
def installed(deb, vbmc_deb):
    """Both .debs installed with dpkg -i (the lab's symlinks set aside); purged and symlinks restored at the end."""
    if os.geteuid() != 0:
        pytest.skip("dpkg -i needs root")
    paths = owned_paths(deb) + owned_paths(vbmc_deb)
    with lab_symlinks_set_aside(paths) as saved:
        try:
            checked(["dpkg", "-i", str(deb), str(vbmc_deb)], env={**CLEAN_ENV, "DEBIAN_FRONTEND": "noninteractive"})
            assert [package_status(p) for p in PACKAGES] == ["ii", "ii"]
            yield paths
        finally:
            purge()
    for path, target in saved.items():
        assert os.readlink(path) == target, f"lab symlink {path} not restored"


def test_version_comes_from_the_library(deb, vbmc_deb):
    for package in (deb, vbmc_deb):
        assert checked(["dpkg-deb", "-f", str(package), "Version"]).stdout.strip() == version(), package


def test_control_declares_the_runtime_dependencies(deb):
    names = depends(deb)
    for name in ("python3", "python3-pyghmi", "python3-pymysql", "python3-lxml"):
        assert name in names, (name, names)
    recommends = checked(["dpkg-deb", "-f", str(deb), "Recommends"]).stdout
    alternatives = [[name.strip().split(" ")[0] for name in group.split("|")] for group in recommends.split(",")]
    assert ["pacemaker", "pacemaker-remote"] in alternatives, recommends
    # ocf:hamail:slapd needs python-ldap only for its depth-10 monitor: recommended, not required
    assert ["python3-ldap"] in alternatives and "python3-ldap" not in names, recommends


def test_product_does_not_depend_on_the_simulator_or_python_daemon(deb):
    names = depends(deb)
    assert "python3-daemon" not in names and VBMC not in names, names
    fields = checked(["dpkg-deb", "-f", str(deb), "Description", "Recommends", "Suggests"]).stdout
    assert "vbmc" not in fields.lower(), fields


def test_vbmc_depends_on_this_hamail_and_python_daemon(vbmc_deb):
    assert {"python3", PRODUCT, "python3-daemon"} <= set(depends(vbmc_deb))
    field = checked(["dpkg-deb", "-f", str(vbmc_deb), "Depends"]).stdout
    assert f"{PRODUCT} (= {version()})" in [d.strip() for d in field.split(",")], field
    description = checked(["dpkg-deb", "-f", str(vbmc_deb), "Description"]).stdout
    assert description.startswith("virtual IPMI BMC for hamail labs and tests, not for production nodes"), description


def shipped_vs_checkout():
    """(installed path, checkout file) of everything the hamail package must ship as it is in the checkout."""
    pairs = [(f"{OCF_DIR}/{n}", ROOT / "agents" / n) for n in checkout_files("agents")]
    pairs += [(f"/usr/sbin/{n}", ROOT / "fence" / n) for n in checkout_files("fence")]
    pairs += [(f"/usr/sbin/{n}", ROOT / "sbin" / n) for n in checkout_files("sbin")]
    pairs += [(f"/usr/lib/drbd/{n}", ROOT / "drbd-handlers" / n) for n in checkout_files("drbd-handlers")]
    return pairs + [(f"{SITE_DIR}/{name}", ROOT / "lib" / "hamail" / name) for name in library_files()]


def test_deb_ships_every_file_of_the_checkout_unchanged(deb, tmp_path):
    paths = set(deb_paths(deb))
    expected = dict(shipped_vs_checkout())
    assert set(expected) - paths == set()
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]
    checked(["dpkg-deb", "-x", str(deb), str(tmp_path)])
    changed = [path for path, source in expected.items() if (tmp_path / path[1:]).read_bytes() != source.read_bytes()]
    assert changed == [], "shipped content differs from the checkout"


def test_deb_ships_the_galera_command_its_page_and_its_schema(deb, tmp_path):
    modes = deb_modes(deb)
    assert modes.get(GALERA_COMMAND) == "-rwxr-xr-x", modes.get(GALERA_COMMAND)
    assert modes.get("/usr/share/man/man8/hamail-galera.8.gz", "").startswith("-rw-r--r--")
    # The schema its --json output follows, beside the module that writes that output.
    schema = f"{SITE_DIR}/{STATUS_SCHEMA}"
    assert modes.get(f"{os.path.dirname(schema)}/status.py", "").startswith("-rw-r--r--")
    assert modes.get(schema, "").startswith("-rw-r--r--"), sorted(p for p in modes if "galera" in p)
    checked(["dpkg-deb", "-x", str(deb), str(tmp_path)])
    assert json.loads((tmp_path / schema[1:]).read_text())["$schema"]
    assert (tmp_path / GALERA_COMMAND[1:]).read_bytes() == (ROOT / "sbin" / "hamail-galera").read_bytes()


def test_product_ships_no_simulator(deb):
    paths = deb_paths(deb)
    assert not [p for p in paths if is_vbmc_path(p)], paths
    assert not [p for p in paths if p.startswith("/usr/bin")], paths


def test_vbmc_deb_ships_the_program_and_its_module(vbmc_deb, tmp_path):
    assert (ROOT / "lab" / "hamail-vbmc").is_file() and (ROOT / "lab" / VBMC_MODULE).is_file()
    files = {path for path, is_dir in deb_entries(vbmc_deb) if not is_dir}
    assert {VBMC_PROGRAM, str(VBMC_MODULE_PATH)} <= files, files
    checked(["dpkg-deb", "-x", str(vbmc_deb), str(tmp_path)])
    assert (tmp_path / VBMC_PROGRAM[1:]).read_bytes() == (ROOT / "lab" / "hamail-vbmc").read_bytes()
    assert (tmp_path / str(VBMC_MODULE_PATH)[1:]).read_bytes() == (ROOT / "lab" / VBMC_MODULE).read_bytes()
    # Nothing of the product and nothing else of lab/ (hamail_lab is not packaged).
    assert not [p for p in files if p.startswith(f"{SITE_DIR}/") or "hamail_lab" in p or p.startswith("/usr/sbin")]
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]


def test_build_is_deterministic(debs):
    first = {name: sha256(path) for name, path in debs.items()}
    assert {name: sha256(path) for name, path in build("build-deb").items()} == first


def source_package(tmp_path):
    """The source package (.dsc) of the tree build-deb staged, so that lintian also checks debian/ itself."""
    staged = ROOT / "build" / "deb" / f"hamail-{version()}"
    assert (staged / "debian" / "control").is_file(), "build-deb left no staged tree"
    shutil.copytree(staged, tmp_path / staged.name, symlinks=True)
    checked(["debian/rules", "clean"], cwd=str(tmp_path / staged.name))  # what dpkg-buildpackage -S does first
    checked(["dpkg-source", "-b", staged.name], cwd=str(tmp_path))
    return tmp_path / f"hamail_{version()}.dsc"


def test_lintian_is_clean(deb, vbmc_deb, tmp_path):
    assert shutil.which("lintian", path=CLEAN_ENV["PATH"]), "lintian is missing: run scripts/ensure-deps"
    dsc = source_package(tmp_path)
    # Every tag, down to informational, pedantic and experimental ones; overridden tags are not shown.
    proc = run(["lintian", "--display-info", "--pedantic", "--display-experimental", "--tag-display-limit", "0",
                "--fail-on", "error,warning,info,pedantic", str(dsc), str(deb), str(vbmc_deb)])
    tags = [line for line in proc.stdout.splitlines() if re.match(r"^[EWIPXC]: ", line)]
    assert tags == [], proc.stdout
    # 0: checked, nothing found; 1: tags; 2 and up: lintian itself failed, so nothing was checked
    assert proc.returncode == 0, f"lintian exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
    # A stale override (nothing left for it to silence) is itself a tag, unused-override (info): caught above.


def test_every_lintian_override_is_explained():
    debian = ROOT / "packaging" / "debian"
    files = sorted(debian.glob("*.lintian-overrides")) + sorted(debian.glob("source/lintian-overrides"))
    assert files, "no override files: drop this test's expectation of one"
    for path in files:
        previous = ""
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert previous.startswith("#"), f"{path.name}: override without a comment above it: {line}"
            previous = line


def test_installed_files_are_regular_and_executable(installed):
    for name in checkout_files("agents"):
        path = OCF_DIR / name
        assert not path.is_symlink() and path.stat().st_mode & 0o777 == 0o755, path
    assert not OCF_DIR.is_symlink()
    for name in checkout_files("fence") + checkout_files("sbin"):
        path = pathlib.Path("/usr/sbin") / name
        assert not path.is_symlink() and os.access(path, os.X_OK), path
    for path, _ in vbmc_executables():
        path = pathlib.Path(path)
        assert not path.is_symlink() and os.access(path, os.X_OK), path


def test_library_imports_from_the_system_python(installed):
    proc = checked(["/usr/bin/python3", "-c", "import hamail; print(hamail.__file__)"])
    assert proc.stdout.strip() == f"{SITE_DIR}/__init__.py"


def test_vbmc_module_imports_from_the_system_python(installed):
    proc = checked(["/usr/bin/python3", "-c", "import hamail_vbmc; print(hamail_vbmc.__file__)"])
    assert proc.stdout.strip() == str(VBMC_MODULE_PATH)


def canonical(xml_text):
    """An XML document in canonical form, for comparing what two runs of an agent printed."""
    return etree.tostring(etree.fromstring(xml_text.encode(), etree.XMLParser(remove_blank_text=True)),
                          method="c14n")


@pytest.mark.parametrize("agent", checkout_files("agents"))
def test_crm_resource_shows_metadata(installed, agent):
    proc = checked(["crm_resource", "--show-metadata", f"ocf:hamail:{agent}"])
    root = etree.fromstring(proc.stdout.encode())
    assert root.tag == "resource-agent" and root.get("name") == agent
    # the installed agent describes itself as the checkout's does (same parameters, actions, texts)
    from_checkout = checked(["/usr/bin/python3", str(ROOT / "agents" / agent), "meta-data"])
    assert canonical(proc.stdout) == canonical(from_checkout.stdout)


@pytest.mark.parametrize("agent", checkout_files("fence"))
def test_fence_agent_metadata(installed, agent):
    proc = checked([f"/usr/sbin/{agent}", "-o", "metadata"])
    root = etree.fromstring(proc.stdout.encode())
    assert root.tag == "resource-agent" and root.get("name") == agent
    from_checkout = checked(["/usr/bin/python3", str(ROOT / "fence" / agent), "-o", "metadata"])
    assert canonical(proc.stdout) == canonical(from_checkout.stdout)


@pytest.mark.parametrize("path,args", expected_executables() + admin_executables() + vbmc_executables())
def test_installed_executables_use_the_installed_library(installed, path, args):
    # PYTHONVERBOSE makes the interpreter log every module file it loads (the shebang's -S does not
    # stop it): hamail must come from dist-packages and nothing from the checkout.
    proc = run([path, *args.split()], env={**CLEAN_ENV, "PYTHONVERBOSE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{SITE_DIR}/__init__.py" in proc.stderr
    assert str(ROOT) not in proc.stderr


def test_installed_vbmc_runs_from_the_system_path(installed):
    proc = run([VBMC_PROGRAM, "--help"], env={**CLEAN_ENV, "PYTHONVERBOSE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: hamail-vbmc" in proc.stdout
    assert str(VBMC_MODULE_PATH) in proc.stderr


def test_purge_leaves_nothing(installed):
    purge()
    for package in PACKAGES:
        assert package_status(package) in ("", "un", "pn"), package
        assert not list(pathlib.Path("/var/lib/dpkg/info").glob(f"{package}.*")), package
    left = [p for p in installed if os.path.lexists(p)]
    assert not left, left
    assert not SITE_DIR.exists()
    assert not list(DIST_PACKAGES.glob("__pycache__/hamail_vbmc.*"))
