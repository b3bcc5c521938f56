"""What test_deb.py and test_rpm.py share: the checkout's file lists and running a packaging/build-* script."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
OCF_DIR = "/usr/lib/ocf/resource.d/hamail"
# The two packages every build makes: the product, and the lab's virtual BMC in a package of its own.
PRODUCT = "hamail"
VBMC = "hamail-vbmc"
VBMC_PROGRAM = "/usr/bin/hamail-vbmc"  # from lab/hamail-vbmc
VBMC_MODULE = "hamail_vbmc.py"  # from lab/hamail_vbmc.py, installed in the system Python's path
# A clean environment, as pacemaker-execd gives an agent: no PYTHONPATH pointing at the checkout.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "OCF_ROOT": "/usr/lib/ocf",
             "HOME": "/root"}


def checkout_files(subdir):
    """Names of the files in a checkout directory: what the packages must ship from it."""
    path = ROOT / subdir
    return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []


def library_files():
    """The library's .py files, relative to lib/hamail."""
    lib = ROOT / "lib" / "hamail"
    return sorted(str(p.relative_to(lib)) for p in lib.rglob("*.py") if "__pycache__" not in p.parts)


def expected_executables():
    """Installed path of every agent and fence agent of the hamail package, and the cheap action that runs it."""
    return ([(f"{OCF_DIR}/{n}", "meta-data") for n in checkout_files("agents")]
            + [(f"/usr/sbin/{n}", "-o metadata") for n in checkout_files("fence")])


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
