# SPDX-License-Identifier: GPL-2.0-or-later
"""The .rpms built by packaging/build-rpm (rpmbuild on this Debian machine) fit a RHEL 9 system.

build-rpm makes hamail (library, OCF agents, fence agents, admin commands) and its subpackage hamail-vbmc (the lab's
virtual BMC, which the product must neither ship nor depend on).  Built here, they target RHEL 9:
Python 3.9, the library in its sitelib (/usr/lib/python3.9/site-packages), and the agents, which run
`python3 -S`, told at build time to look in sitelib (hamail, pyghmi, PyMySQL) and sitearch
(/usr/lib64/python3.9/site-packages: lxml, cryptography), never in Debian's dist-packages and never
at the build machine's Python 3.11.

The packages are also installed with `rpm --root` into scratch roots (--nodeps --noscripts: RHEL's
packages are not Debian's).  In one, the agents run through their own #! line under chroot, with this
machine's python3 standing in for RHEL's and Debian's lxml, cryptography, pyghmi and PyMySQL laid
where RHEL's packages put them (compiled ones in sitearch, pure ones in sitelib); the other is erased
again and must be left empty.
"""

import gzip
import hashlib
import json
import os
import pathlib
import struct
import subprocess
import tempfile

import pytest
from lxml import etree

from packaging_helpers import (CLEAN_ENV, GALERA_COMMAND, OCF_DIR, PRODUCT, ROOT, STATUS_SCHEMA, VBMC, VBMC_MODULE,
                               VBMC_PROGRAM, admin_executables, build, checked, checkout_files, expected_executables,
                               is_vbmc_path, library_files, product_man_pages, rpm_payload, run, vbmc_man_pages,
                               version)

TARGET_PYTHON = "3.9"  # RHEL 9
SITELIB = f"/usr/lib/python{TARGET_PYTHON}/site-packages"
SITEARCH = f"/usr/lib64/python{TARGET_PYTHON}/site-packages"
DEBIAN_LINE = b'sys.path.append("/usr/lib/python3/dist-packages")'
RHEL_LINE = f'sys.path.extend(["{SITELIB}", "{SITEARCH}"])'.encode()
RPMDB = "/var/lib/rpm"  # inside the scratch roots (Debian's rpm would use root's ~/.rpmdb)
# What the agents import besides the standard library, and the module that tells each one was found.
RUNTIME_MODULES = ["lxml.etree", "cryptography", "pymysql", "pyghmi.ipmi.command"]


def rpm_query(rpm_file, *args):
    """Lines printed by `rpm -qp ARGS FILE`, which must succeed."""
    return checked(["rpm", "-qp", *args, str(rpm_file)]).stdout.splitlines()


def requires(rpm_file):
    """The rpm's requirements, as rpm prints them, without rpm's own rpmlib() features."""
    return {line for line in rpm_query(rpm_file, "--requires") if not line.startswith("rpmlib(")}


def test_rpm_lists_agents_library_fence_agents_and_man_pages(rpm):
    listed = set(rpm_query(rpm, "-l"))
    expected = {f"{SITELIB}/hamail/{name}" for name in library_files()}
    expected |= {path for path, _ in expected_executables() + admin_executables()}
    assert expected - listed == set()
    assert {p for p in listed if p.startswith("/usr/share/man/")} in (
        set(product_man_pages()), {page + ".gz" for page in product_man_pages()})
    assert checkout_files("agents") and checkout_files("fence"), "no agents in the checkout?"


def test_rpm_agents_are_executable(rpm):
    # --dump: path size mtime digest mode owner group ...
    modes = {fields[0]: int(fields[4], 8) for fields in map(str.split, rpm_query(rpm, "--dump"))}
    for name in checkout_files("agents"):
        assert modes[f"{OCF_DIR}/{name}"] & 0o777 == 0o755, name
    for name in checkout_files("fence") + checkout_files("sbin"):
        assert modes[f"/usr/sbin/{name}"] & 0o777 == 0o755, name


def test_rpm_ships_the_galera_command_its_page_and_its_schema(rpm):
    modes = {fields[0]: int(fields[4], 8) for fields in map(str.split, rpm_query(rpm, "--dump"))}
    assert modes.get(GALERA_COMMAND, 0) & 0o777 == 0o755, modes.get(GALERA_COMMAND)
    assert [p for p in modes if p.removesuffix(".gz") == "/usr/share/man/man8/hamail-galera.8"], sorted(modes)
    # The schema its --json output follows, beside the module that writes that output.
    schema = f"{SITELIB}/hamail/{STATUS_SCHEMA}"
    assert f"{os.path.dirname(schema)}/status.py" in modes
    assert modes.get(schema, 0) & 0o777 == 0o644, sorted(p for p in modes if "galera" in p)
    payload = rpm_payload(rpm)
    assert json.loads(payload[schema])["$schema"]
    assert payload[GALERA_COMMAND] == (ROOT / "sbin" / "hamail-galera").read_bytes()


def test_rpm_requires_rhel9_python_and_the_runtime_libraries(rpm):
    # python(abi) comes from the files' place (/usr/lib/python3.9/): the target's, not the build machine's 3.11.
    assert requires(rpm) == {"/usr/bin/python3", f"python(abi) = {TARGET_PYTHON}", "python3", "python3-pyghmi",
                             "python3-PyMySQL", "python3-lxml"}
    assert "pacemaker" in rpm_query(rpm, "--recommends")
    assert rpm_query(rpm, "--qf", "%{VERSION} %{ARCH}") == [f"{version()} noarch"]


def test_product_rpm_has_no_simulator_and_no_python_daemon(rpm):
    listed = rpm_query(rpm, "-l")
    assert not [p for p in listed if is_vbmc_path(p)], listed
    assert not [p for p in listed if p.startswith("/usr/bin")], listed
    assert not {r.split()[0] for r in requires(rpm)} & {"python3-daemon", VBMC}
    assert "vbmc" not in "\n".join(rpm_query(rpm, "--qf", "%{SUMMARY}\n%{DESCRIPTION}")).lower()


def test_vbmc_rpm_ships_the_program_its_module_and_its_page(vbmc_rpm):
    listed = set(rpm_query(vbmc_rpm, "-l"))
    pages = {p for p in listed if p.startswith("/usr/share/man/")}
    assert pages in (set(vbmc_man_pages()), {page + ".gz" for page in vbmc_man_pages()})
    assert listed - pages == {VBMC_PROGRAM, f"{SITELIB}/{VBMC_MODULE}"}
    modes = {fields[0]: int(fields[4], 8) for fields in map(str.split, rpm_query(vbmc_rpm, "--dump"))}
    assert modes[VBMC_PROGRAM] & 0o777 == 0o755


def test_vbmc_rpm_metadata(vbmc_rpm):
    assert requires(vbmc_rpm) == {"/usr/bin/python3", f"python(abi) = {TARGET_PYTHON}", f"{PRODUCT} = {version()}-1",
                                  "python3-cryptography", "python3-daemon"}
    assert rpm_query(vbmc_rpm, "--qf", "%{NAME} %{VERSION} %{ARCH}") == [f"{VBMC} {version()} noarch"]
    assert rpm_query(vbmc_rpm, "--qf", "%{SUMMARY}") == [
        "virtual IPMI BMC for hamail labs and tests, not for production nodes"]


def test_rpm_build_is_deterministic(rpms):
    first = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in rpms.items()}
    assert {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in build("build-rpm").items()} == first


def test_rpm_agents_look_in_rhel_sitelib_and_sitearch(rpm, vbmc_rpm):
    # Everything is shipped as it is in the checkout, except the agents' one line that adds Debian's
    # dist-packages: it becomes the target's sitelib and sitearch.
    payload = rpm_payload(rpm)
    rewritten = {f"{OCF_DIR}/{n}": ROOT / "agents" / n for n in checkout_files("agents")}
    rewritten |= {f"/usr/sbin/{n}": ROOT / "fence" / n for n in checkout_files("fence")}
    rewritten |= {f"/usr/lib/drbd/{n}": ROOT / "drbd-handlers" / n for n in checkout_files("drbd-handlers")}
    for path, source in rewritten.items():
        text = source.read_bytes()
        assert text.count(DEBIAN_LINE) == 1, f"{source}: the line the rpm build rewrites is not there"
        assert payload[path] == text.replace(DEBIAN_LINE, RHEL_LINE), path
    for name in library_files():
        assert payload[f"{SITELIB}/hamail/{name}"] == (ROOT / "lib" / "hamail" / name).read_bytes(), name
    # The admin commands run without -S (the target's site finds the library): shipped as they are.
    for name in checkout_files("sbin"):
        assert payload[f"/usr/sbin/{name}"] == (ROOT / "sbin" / name).read_bytes(), name
    vbmc = rpm_payload(vbmc_rpm)
    assert vbmc[VBMC_PROGRAM] == (ROOT / "lab" / "hamail-vbmc").read_bytes()
    assert vbmc[f"{SITELIB}/{VBMC_MODULE}"] == (ROOT / "lab" / VBMC_MODULE).read_bytes()
    for path, content in {**payload, **vbmc}.items():
        assert b"dist-packages" not in content and b"python3.11" not in content, path
    # No byte code: the build runs the staged agents (man pages), and this machine's 3.11 byte code would
    # be dead weight in a 3.9 directory (Fedora/RHEL's own byte-compiling is the rpm build's job there).
    assert not [p for p in {**payload, **vbmc} if "__pycache__" in p or p.endswith(".pyc")]


def test_rpm_ships_the_same_man_pages_as_the_deb(rpm, vbmc_rpm, deb, vbmc_deb, tmp_path):
    for rpm_file, deb_file in ((rpm, deb), (vbmc_rpm, vbmc_deb)):
        checked(["dpkg-deb", "-x", str(deb_file), str(tmp_path / deb_file.stem)])
        tree = tmp_path / deb_file.stem
        in_deb = {"/" + str(p.relative_to(tree)).removesuffix(".gz"): gzip.decompress(p.read_bytes())
                  for p in tree.glob("usr/share/man/*/*")}
        in_rpm = {path.removesuffix(".gz"): gzip.decompress(data) if path.endswith(".gz") else data
                  for path, data in rpm_payload(rpm_file).items() if path.startswith("/usr/share/man/")}
        assert in_rpm == in_deb and in_rpm, rpm_file


# --- installed into scratch roots --------------------------------------------------------------------

def rpm_in(root, *args):
    """Run rpm on a scratch root's database (it must succeed)."""
    return checked(["rpm", "--root", str(root), "--dbpath", RPMDB, *args])


def install_into(root, *packages):
    """rpm -i the packages into root: no dependencies (RHEL's are not here), no scriptlets."""
    rpm_in(root, "-i", "--nodeps", "--noscripts", "--nosignature", *map(str, packages))


def scratch_root(prefix):
    """A new empty directory for a scratch root, on disk rather than tmpfs."""
    return pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))


def no_mounts_under(root):
    """True when nothing is mounted below root (the chroot's bind mounts died with their namespace)."""
    with open("/proc/self/mountinfo") as mountinfo:
        return not [line for line in mountinfo if f" {root}/" in line or f" {root} " in line]


def remove_root(root):
    """Delete a scratch root, never across a mount point (a bind mount of /usr would be deleted with it)."""
    assert no_mounts_under(root), f"something is still mounted under {root}"
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True, timeout=300)


def elf_interpreter(binary):
    """The program interpreter (PT_INTERP) of a 64-bit little-endian ELF program: /lib64/ld-linux-x86-64.so.2."""
    with open(binary, "rb") as elf:
        data = elf.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{binary}: not a 64-bit little-endian ELF"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        kind, _, offset, _, _, size = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
        if kind == 3:  # PT_INTERP
            return data[offset:offset + size].rstrip(b"\0").decode()
    raise AssertionError(f"{binary} has no program interpreter")


def runtime_packages():
    """{top-level name in Debian's dist-packages: compiled?} of what RUNTIME_MODULES load, as this python3 sees it."""
    probe = ("import json, sys\n" + "".join(f"import {m}\n" for m in RUNTIME_MODULES)
             + "print(json.dumps(sorted(f for f in (getattr(m, '__file__', None) for m in list(sys.modules.values()))"
             " if f)))")
    files = json.loads(checked(["/usr/bin/python3", "-c", probe]).stdout)
    dist = "/usr/lib/python3/dist-packages/"
    tops = {f[len(dist):].split("/")[0] for f in files if f.startswith(dist)}
    compiled = {}
    for top in tops - {"hamail", VBMC_MODULE}:
        path = pathlib.Path(dist) / top
        compiled[top] = path.suffix == ".so" or (path.is_dir() and any(path.rglob("*.so")))
    assert compiled.get("lxml") and compiled.get("cryptography") and compiled.get("pymysql") is False, compiled
    return compiled


# Mounts this machine's python3 (interpreter, standard library, shared libraries, loader) and Debian's
# dist-packages (as /host-dist-packages, which the stand-in symlinks point into) read-only into the
# root, in a mount namespace of its own that ends with the command, then runs the command under chroot.
CHROOT_SCRIPT = r'''
set -e
root=$1 python=$2 stdlib=$3 libdir=$4 interp=$5; shift 5
bind() { mount -o bind,ro "$1" "$root$2"; }
bind "$python" /usr/bin/python3
bind "$stdlib" "$stdlib"
bind "$libdir" "$libdir"
bind "$(readlink -f "$interp")" "$interp"
bind /usr/lib/python3/dist-packages /host-dist-packages
mount --rbind /dev "$root/dev"
exec chroot "$root" "$@"
'''


@pytest.fixture(scope="module")
def rhel_like_root(rpm, vbmc_rpm):
    """A scratch root with both rpms installed, this machine's python3 as /usr/bin/python3, and Debian's
    copies of the runtime libraries linked into sitearch (compiled) and sitelib (pure Python)."""
    if os.geteuid() != 0:
        pytest.skip("rpm --root, mount and chroot need root")
    root = scratch_root("hamail-rpmroot-")
    try:
        install_into(root, rpm, vbmc_rpm)
        python = os.path.realpath("/usr/bin/python3")
        config = json.loads(checked(["/usr/bin/python3", "-c", "import json, sysconfig; print(json.dumps("
                                     "[sysconfig.get_paths()['stdlib'], sysconfig.get_config_var('LIBDIR')]))"]).stdout)
        stdlib, libdir = config
        interp = elf_interpreter(python)
        for directory in (stdlib, libdir, "/host-dist-packages", "/dev", SITEARCH, os.path.dirname(interp)):
            (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for placeholder in ("/usr/bin/python3", interp):
            (root / placeholder.lstrip("/")).touch()
        for top, compiled in runtime_packages().items():
            (root / (SITEARCH if compiled else SITELIB).lstrip("/") / top).symlink_to(f"/host-dist-packages/{top}")

        def in_root(*argv, env=None):
            """Run argv under chroot in the root (exit status not checked)."""
            # The environment passes through unshare, sh and chroot to argv (the root has no env program).
            return run(["unshare", "--mount", "--fork", "sh", "-c", CHROOT_SCRIPT, "sh", str(root), python, stdlib,
                        libdir, interp, *argv], env=env or CLEAN_ENV)
        yield root, in_root
    finally:
        remove_root(root)


def test_rpm_root_has_the_files_where_rhel_keeps_them(rhel_like_root):
    root, _ = rhel_like_root
    assert rpm_in(root, "-qa", "--qf", "%{NAME}\n").stdout.split() in ([PRODUCT, VBMC], [VBMC, PRODUCT])
    for path in ([f"{SITELIB}/hamail/__init__.py", f"{SITELIB}/{VBMC_MODULE}", VBMC_PROGRAM]
                 + [path for path, _ in expected_executables() + admin_executables()]):
        assert (root / path.lstrip("/")).is_file(), path
    for page in product_man_pages() + vbmc_man_pages():
        assert [p for p in (root / page.lstrip("/")).parent.glob(os.path.basename(page) + "*")], page
    assert list(root.glob("usr/share/licenses/hamail*/LICENSE")), "no licence file"
    assert not list(root.glob("usr/lib/python3/**")) and not list(root.glob("usr/lib/python3.11/site-packages/**"))
    verify = rpm_in(root, "-V", "--nodeps", PRODUCT, VBMC)  # sizes, digests, modes as the rpm says
    assert verify.stdout == ""


@pytest.mark.parametrize("path,args", expected_executables())
def test_installed_agent_runs_with_rhel_paths(rhel_like_root, path, args):
    _, in_root = rhel_like_root
    # Through the agent's own #! line (python3 -S): only its rewritten line can add sitelib and sitearch.
    proc = in_root(path, *args.split(), env={**CLEAN_ENV, "PYTHONVERBOSE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert etree.fromstring(proc.stdout.encode()).get("name") == os.path.basename(path)
    assert f"{SITELIB}/hamail/__init__.py" in proc.stderr  # the library from sitelib
    assert f"{SITEARCH}/lxml/" in proc.stderr  # lxml (compiled) from sitearch


@pytest.mark.parametrize("path,args", expected_executables())
def test_installed_agent_reaches_every_runtime_library(rhel_like_root, path, args):
    _, in_root = rhel_like_root
    # The agent's own start-up code runs first (its metadata action), then the modules the other actions
    # import are looked up on the sys.path it left: pure ones must come from sitelib, compiled from sitearch.
    probe = ("import contextlib, io, json, runpy, sys\n"
             "agent, args = sys.argv[1], sys.argv[2:]\n"
             "sys.argv = [agent, *args]\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try:\n"
             "        runpy.run_path(agent, run_name='__main__')\n"
             "    except SystemExit:\n"
             "        pass\n"
             + "".join(f"import {m}\n" for m in RUNTIME_MODULES)
             + f"print(json.dumps({{m: sys.modules[m].__file__ for m in {RUNTIME_MODULES!r}}}))\n")
    proc = in_root("/usr/bin/python3", "-S", "-c", probe, path, *args.split())
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["lxml.etree"].startswith(f"{SITEARCH}/lxml/")
    assert found["cryptography"].startswith(f"{SITEARCH}/cryptography/")
    assert found["pymysql"].startswith(f"{SITELIB}/pymysql/")
    assert found["pyghmi.ipmi.command"].startswith(f"{SITELIB}/pyghmi/")


def test_installed_vbmc_runs_with_rhel_site_paths(rhel_like_root):
    _, in_root = rhel_like_root
    # hamail-vbmc runs without -S: RHEL's site adds sitelib and sitearch; PYTHONPATH plays that part here
    # (this machine's site would add Debian's directories instead).
    env = {**CLEAN_ENV, "PYTHONPATH": f"{SITELIB}:{SITEARCH}", "PYTHONVERBOSE": "1"}
    proc = in_root("/usr/bin/python3", "-S", VBMC_PROGRAM, "--help", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "usage: hamail-vbmc" in proc.stdout
    assert f"{SITELIB}/{VBMC_MODULE}" in proc.stderr and f"{SITELIB}/hamail/__init__.py" in proc.stderr


def test_installed_galera_command_runs_with_rhel_site_paths(rhel_like_root):
    _, in_root = rhel_like_root
    # As hamail-vbmc: no -S, so RHEL's site would add sitelib and sitearch; PYTHONPATH plays that part here.
    env = {**CLEAN_ENV, "PYTHONPATH": f"{SITELIB}:{SITEARCH}", "PYTHONVERBOSE": "1"}
    proc = in_root("/usr/bin/python3", "-S", GALERA_COMMAND, "status", "--help", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: hamail-galera status")
    assert f"{SITELIB}/hamail/agents/galera/command.py" in proc.stderr


def test_rpm_erase_leaves_the_root_empty(rpm, vbmc_rpm):
    if os.geteuid() != 0:
        pytest.skip("rpm --root needs root")
    root = scratch_root("hamail-rpmerase-")
    try:
        def files():
            return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                          if not p.is_dir() and not str(p.relative_to(root)).startswith(RPMDB.lstrip("/")))
        install_into(root, rpm, vbmc_rpm)
        assert len(files()) > len(library_files())
        rpm_in(root, "-e", "--nodeps", "--noscripts", VBMC, PRODUCT)
        assert files() == []
        dirs = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())
        assert not [d for d in dirs if "hamail" in d], dirs
        assert rpm_in(root, "-qa").stdout.strip() == ""
    finally:
        remove_root(root)

