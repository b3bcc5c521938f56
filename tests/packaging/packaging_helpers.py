"""What test_deb.py and test_rpm.py share: the checkout's file lists and running a packaging/build-* script."""

import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
OCF_DIR = "/usr/lib/ocf/resource.d/hamail"
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
    """Installed path of every agent, fence agent and bin/ program, and the cheap action that runs it."""
    return ([(f"{OCF_DIR}/{n}", "meta-data") for n in checkout_files("agents")]
            + [(f"/usr/sbin/{n}", "-o metadata") for n in checkout_files("fence")]
            + [(f"/usr/bin/{n}", "--help") for n in checkout_files("bin")])


def version():
    """__version__ as written in lib/hamail/__init__.py."""
    text = (ROOT / "lib" / "hamail" / "__init__.py").read_text()
    return text.split("__version__", 1)[1].split('"')[1]


def build(script):
    """Run packaging/<script> (what `make deb` / `make rpm` run) and return the package file it printed."""
    proc = subprocess.run([str(ROOT / "packaging" / script)], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
    package = pathlib.Path(proc.stdout.strip().splitlines()[-1])
    assert package.is_file() and package.parent == ROOT / "dist", package
    return package
