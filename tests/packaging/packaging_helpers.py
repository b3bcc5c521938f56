# SPDX-License-Identifier: GPL-2.0-or-later
"""What the packaging tests share: the checkout's file lists, expected paths, and running a packaging/build-* script."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
OCF_DIR = "/usr/lib/ocf/resource.d/hamail"
# The two packages every build makes: the product, and the lab's virtual BMC in a package of its own.
PRODUCT = "hamail"
VBMC = "hamail-vbmc"
VBMC_PROGRAM = "/usr/bin/hamail-vbmc"  # from lab/hamail-vbmc
VBMC_MODULE = "hamail_vbmc.py"  # from lab/hamail_vbmc.py, installed in the system Python's path
# The Galera admin command, and the schema of its --json document, shipped beside the module that writes it.
GALERA_COMMAND = "/usr/sbin/hamail-galera"  # from sbin/hamail-galera
STATUS_SCHEMA = "agents/galera/status-schema.json"  # relative to lib/hamail, as status.py is
# A clean environment, as pacemaker-execd gives an agent: no PYTHONPATH pointing at the checkout.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "OCF_ROOT": "/usr/lib/ocf",
             "HOME": "/root"}


# Man pages, generated at build time from each program's own description (packaging/tools/hamail-manpages).
MAN_DIR = "/usr/share/man"


def product_man_pages():
    """Man pages (uncompressed names) the hamail package must ship: one per OCF agent, fence agent and admin command."""
    return ([f"{MAN_DIR}/man7/ocf_hamail_{n}.7" for n in checkout_files("agents")]
            + [f"{MAN_DIR}/man8/{n}.8" for n in checkout_files("fence") + checkout_files("sbin")])


def vbmc_man_pages():
    """Man pages (uncompressed names) the hamail-vbmc package must ship: the lab BMC's own."""
    return [f"{MAN_DIR}/man1/hamail-vbmc.1"]


def checkout_files(subdir):
    """Names of the files in a checkout directory: what the packages must ship from it."""
    path = ROOT / subdir
    return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []


# The library's files: its modules and the data files beside them (galera/status-schema.json).
LIBRARY_PATTERNS = ("*.py", "*.json")


def library_files():
    """The library's modules and data files, relative to lib/hamail."""
    lib = ROOT / "lib" / "hamail"
    return sorted(str(p.relative_to(lib)) for pattern in LIBRARY_PATTERNS for p in lib.rglob(pattern)
                  if "__pycache__" not in p.parts)


def expected_executables():
    """Installed path of every agent and fence agent of the hamail package, and the cheap action that runs it."""
    return ([(f"{OCF_DIR}/{n}", "meta-data") for n in checkout_files("agents")]
            + [(f"/usr/sbin/{n}", "-o metadata") for n in checkout_files("fence")])


def admin_executables():
    """Installed path of every admin command (sbin/) of the hamail package, and the cheap action that runs it."""
    return [(f"/usr/sbin/{n}", "--help") for n in checkout_files("sbin")]


def vbmc_executables():
    """Installed path of the hamail-vbmc package's program, and the cheap action that runs it."""
    return [(VBMC_PROGRAM, "--help")]


def is_vbmc_path(path):
    """True for a path that belongs to the BMC simulator, which the hamail package must not ship."""
    return "vbmc" in path.lower()


def version():
    """__version__ as written in lib/hamail/__init__.py."""
    text = (ROOT / "lib" / "hamail" / "__init__.py").read_text()
    return text.split("__version__", 1)[1].split('"')[1]


def package_name(package_file):
    """The package name recorded in a .deb or .rpm file (not guessed from the file name)."""
    if package_file.suffix == ".deb":
        argv = ["dpkg-deb", "-f", str(package_file), "Package"]
    else:
        argv = ["rpm", "-qp", "--qf", "%{NAME}", str(package_file)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def build(script):
    """Run packaging/<script> (what `make deb` / `make rpm` run) and return {package name: file} it printed."""
    proc = subprocess.run([str(ROOT / "packaging" / script)], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
    packages = {}
    for line in proc.stdout.strip().splitlines():
        package = pathlib.Path(line)
        assert package.is_file() and package.parent == ROOT / "dist", package
        packages[package_name(package)] = package
    assert set(packages) == {PRODUCT, VBMC}, packages
    return packages


def run(argv, **kwargs):
    """Run a command with the clean environment, capturing text output (never raising on exit status)."""
    kwargs.setdefault("env", CLEAN_ENV)
    kwargs.setdefault("cwd", "/")
    kwargs.setdefault("timeout", 300)
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def checked(argv, **kwargs):
    """Run a command that must succeed; its output on failure is in the assertion message."""
    proc = run(argv, **kwargs)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def render_man(page_path):
    """(text, warnings) of a man page file: the text as `man` shows it at 80 columns, and the warnings of
    groff run as lintian runs it (man --warnings ... -Tutf8 -Z)."""
    env = {**CLEAN_ENV, "MANROFFSEQ": "", "MANWIDTH": "80"}
    lint = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page_path)], env=env)
    assert lint.returncode == 0, f"man -l {page_path} exited {lint.returncode}: {lint.stderr}"
    text = checked(["man", "-l", str(page_path)], env=env).stdout  # not a terminal: plain text, no overstrike
    return text, lint.stderr


def rpm_payload(rpm_file):
    """{path: bytes} of the regular files in an rpm (rpm2cpio's newc archive, parsed here: no cpio needed)."""
    data = subprocess.run(["rpm2cpio", str(rpm_file)], capture_output=True, check=True, timeout=60).stdout
    files, offset = {}, 0
    while True:
        header = data[offset:offset + 110]
        assert header[:6] == b"070701", "not a newc cpio archive"
        mode, size, namesize = (int(header[6 + 8 * i:14 + 8 * i], 16) for i in (1, 6, 11))
        name = data[offset + 110:offset + 110 + namesize - 1].decode()
        offset = (offset + 110 + namesize + 3) & ~3  # name padded to 4 bytes
        if name == "TRAILER!!!":
            return files
        if mode & 0o170000 == 0o100000:
            files[name.lstrip(".")] = data[offset:offset + size]
        offset = (offset + size + 3) & ~3
