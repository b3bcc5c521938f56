"""The .deb built by packaging/build-deb installs on this machine, every agent works from it, and it removes cleanly.

The lab harness may have symlinked the checkout into the places the package installs to
(/usr/lib/ocf/resource.d/hamail -> agents/, /usr/sbin/fence_X -> fence/fence_X): those symlinks are
saved, removed for the install and restored afterwards, also when a test fails.  Nothing here needs a
running cluster (`crm_resource --show-metadata` runs the agent locally).
"""

import contextlib
import hashlib
import os
import pathlib
import shutil
import subprocess

import pytest
from lxml import etree

from packaging_helpers import CLEAN_ENV, ROOT, build, checkout_files, expected_executables, library_files, version

PACKAGE = "hamail"
OCF_DIR = pathlib.Path("/usr/lib/ocf/resource.d/hamail")
SITE_DIR = pathlib.Path("/usr/lib/python3/dist-packages/hamail")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root")


def run(argv, **kwargs):
    """Run a command with the clean environment, capturing text output (never raising on exit status)."""
    kwargs.setdefault("env", CLEAN_ENV)
    kwargs.setdefault("cwd", "/")
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def checked(argv, **kwargs):
    """Run a command that must succeed; its output on failure is in the assertion message."""
    proc = run(argv, **kwargs)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def deb_entries(deb_file):
    """(absolute path, is a directory) for every entry the .deb ships."""
    entries = []
    # dpkg-deb -c prints `mode owner size date time ./path`; our paths have no spaces.
    for line in checked(["dpkg-deb", "-c", str(deb_file)]).stdout.splitlines():
        fields = line.split()
        entries.append((fields[-1][1:].rstrip("/") or "/", fields[0].startswith("d")))
    return entries


def deb_paths(deb_file):
    """Absolute paths the .deb ships, directories without their trailing slash."""
    return [path for path, _ in deb_entries(deb_file)]


def owned_paths(deb_file):
    """The shipped paths that belong to hamail alone: its files and its own directories, not /usr/sbin."""
    return [path for path, is_dir in deb_entries(deb_file) if not is_dir or "hamail" in path]


def sha256(path):
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
                assert owner.stdout.startswith(f"{PACKAGE}:"), (
                    f"{path} exists, is not a symlink and not from the {PACKAGE} package; refusing to overwrite it")
        yield saved
    finally:
        for path, target in saved.items():
            if not os.path.lexists(path):
                os.symlink(target, path)


def purge():
    """Remove the package with its configuration; fine when it is not installed."""
    return checked(["dpkg", "--purge", PACKAGE])


def package_status():
    return run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", PACKAGE]).stdout.strip()


@pytest.fixture(scope="module")
def installed(deb):
    """The .deb installed with dpkg -i (the lab's symlinks set aside); purged and symlinks restored at the end."""
    paths = owned_paths(deb)
    with lab_symlinks_set_aside(paths) as saved:
        try:
            checked(["dpkg", "-i", str(deb)], env={**CLEAN_ENV, "DEBIAN_FRONTEND": "noninteractive"})
            assert package_status() == "ii"
            yield paths
        finally:
            purge()
    for path, target in saved.items():
        assert os.readlink(path) == target, f"lab symlink {path} not restored"


def test_version_comes_from_the_library(deb):
    assert checked(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip() == version()


def test_control_declares_the_runtime_dependencies(deb):
    depends = checked(["dpkg-deb", "-f", str(deb), "Depends"]).stdout
    for name in ("python3", "python3-pyghmi", "python3-pymysql", "python3-lxml", "python3-daemon"):
        assert name in [d.strip().split(" ")[0].split(":")[0] for d in depends.split(",")], (name, depends)
    assert "pacemaker" in checked(["dpkg-deb", "-f", str(deb), "Recommends"]).stdout


def test_deb_ships_every_file_of_the_checkout(deb):
    paths = set(deb_paths(deb))
    expected = {f"{OCF_DIR}/{n}" for n in checkout_files("agents")}
    expected |= {f"/usr/sbin/{n}" for n in checkout_files("fence")}
    expected |= {f"/usr/bin/{n}" for n in checkout_files("bin")}
    expected |= {f"{SITE_DIR}/{name}" for name in library_files()}
    assert expected - paths == set()
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]


def test_build_is_deterministic(deb):
    first = sha256(deb)
    assert sha256(build("build-deb")) == first


def test_lintian_has_no_errors(deb):
    if shutil.which("lintian") is None:
        pytest.skip("lintian not installed")
    proc = run(["lintian", "--no-tag-display-limit", str(deb)])
    errors = [line for line in proc.stdout.splitlines() if line.startswith("E:")]
    assert not errors, proc.stdout


def test_installed_files_are_regular_and_executable(installed):
    for name in checkout_files("agents"):
        path = OCF_DIR / name
        assert not path.is_symlink() and path.stat().st_mode & 0o777 == 0o755, path
    assert not OCF_DIR.is_symlink()
    for name in checkout_files("fence"):
        path = pathlib.Path("/usr/sbin") / name
        assert not path.is_symlink() and os.access(path, os.X_OK), path
    for name in checkout_files("bin"):
        path = pathlib.Path("/usr/bin") / name
        assert not path.is_symlink() and os.access(path, os.X_OK), path


def test_library_imports_from_the_system_python(installed):
    proc = checked(["/usr/bin/python3", "-c", "import hamail; print(hamail.__file__)"])
    assert proc.stdout.strip() == f"{SITE_DIR}/__init__.py"


@pytest.mark.parametrize("agent", checkout_files("agents"))
def test_crm_resource_shows_metadata(installed, agent):
    proc = checked(["crm_resource", "--show-metadata", f"ocf:hamail:{agent}"])
    root = etree.fromstring(proc.stdout.encode())
    assert root.tag == "resource-agent" and root.get("name") == agent
    assert root.find("actions") is not None


@pytest.mark.parametrize("agent", checkout_files("fence"))
def test_fence_agent_metadata(installed, agent):
    proc = checked([f"/usr/sbin/{agent}", "-o", "metadata"])
    root = etree.fromstring(proc.stdout.encode())
    assert root.tag == "resource-agent" and root.get("name") == agent


@pytest.mark.parametrize("path,args", expected_executables())
def test_installed_executables_use_the_installed_library(installed, path, args):
    # PYTHONVERBOSE makes the interpreter log every module file it loads (the shebang's -S does not
    # stop it): hamail must come from dist-packages and nothing from the checkout.
    proc = run([path, *args.split()], env={**CLEAN_ENV, "PYTHONVERBOSE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{SITE_DIR}/__init__.py" in proc.stderr
    assert str(ROOT) not in proc.stderr


def test_purge_leaves_nothing(installed):
    purge()
    assert package_status() in ("", "un", "pn")
    left = [p for p in installed if os.path.lexists(p)]
    assert not left, left
    assert not SITE_DIR.exists()
    assert not list(pathlib.Path("/var/lib/dpkg/info").glob(f"{PACKAGE}.*"))
