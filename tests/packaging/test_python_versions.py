# SPDX-License-Identifier: GPL-2.0-or-later
"""The packaged code runs on RHEL 9's Python 3.9, which cannot be installed on this Debian machine.

vermin (pinned, installed from PyPI by scripts/ensure-deps into a directory of its own) reads every
packaged Python file (the library, the agents, the fence agents, the lab BMC, the man page generator
that the rpm build runs) and names the lowest Python that has every syntax feature, module, function
and keyword argument they use.  vermin does not see `X | Y` annotations that a 3.9 interpreter would
evaluate (it leaves annotations alone, and its union-types option also flags the ones that `from
__future__ import annotations` keeps as strings), so that one case is checked here with ast.
"""

import ast
import pathlib
import re

from packaging_helpers import CLEAN_ENV, ROOT, run

TARGET = (3, 9)  # RHEL 9's /usr/bin/python3
VERMIN_VERSION = "1.9.2"
VERMIN_DIR = pathlib.Path(f"/var/cache/hamail/pypi-vermin-{VERMIN_VERSION}")
# What the packages ship as Python code, relative to the checkout (see STAGED_PATHS in packaging/common.sh).
PACKAGED = ["lib/hamail", "agents", "fence", "lab/hamail-vbmc", "lab/hamail_vbmc.py", "packaging/tools"]


def python_files():
    """Every packaged Python file: .py files, and executables whose #! line runs python3."""
    files = []
    for entry in PACKAGED:
        path = ROOT / entry
        for candidate in sorted(path.rglob("*") if path.is_dir() else [path]):
            if not candidate.is_file() or "__pycache__" in candidate.parts:
                continue
            first_line = candidate.read_bytes()[:128].split(b"\n")[0]
            if candidate.suffix == ".py" or (first_line.startswith(b"#!") and b"python3" in first_line):
                files.append(candidate)
    return files


def vermin(*args):
    """Run the pinned vermin with the system python3 (it is pure Python)."""
    assert (VERMIN_DIR / "vermin" / "__init__.py").is_file(), \
        f"vermin {VERMIN_VERSION} missing: run scripts/ensure-deps"
    return run(["/usr/bin/python3", "-c", "import sys; from vermin import main; sys.exit(main())", *args],
               env={**CLEAN_ENV, "PYTHONPATH": str(VERMIN_DIR)}, cwd=str(ROOT))


def test_vermin_finds_nothing_newer_than_python_3_9():
    files = python_files()
    assert len(files) > 20 and ROOT / "agents" / "Dummy" in files and ROOT / "fence" / "fence_ipmi" in files
    target = "%d.%d" % TARGET
    proc = vermin("--no-tips", "--violations", f"--target={target}-", *map(str, files))
    # --violations prints only what needs a newer Python than the target, and exits 1 when anything does.
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"^Minimum required versions: (\d+)\.(\d+)$", proc.stdout, re.M)
    assert found, proc.stdout
    assert (int(found.group(1)), int(found.group(2))) <= TARGET, proc.stdout
    assert f"Analyzing {len(files)} files" in proc.stdout, proc.stdout  # every file was read


def evaluated_unions(tree):
    """Line numbers of `X | Y` type expressions that Python 3.9 evaluates at run time (and fails on)."""
    postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    and any(alias.name == "annotations" for alias in node.names) for node in tree.body)
    annotations = []
    if not postponed:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
                annotations += [a.annotation for a in every if a is not None and a.annotation is not None]
                annotations += [node.returns] if node.returns is not None else []
        # Module and class level `name: X | Y` are evaluated (into __annotations__); locals are not.
        scopes = [tree] + [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        annotations += [s.annotation for scope in scopes for s in scope.body if isinstance(s, ast.AnnAssign)]
    # isinstance(x, A | B) is evaluated whatever the __future__ import says.
    annotations += [node.args[1] for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name) and node.func.id in ("isinstance", "issubclass")
                    and len(node.args) == 2]
    return sorted({n.lineno for a in annotations for n in ast.walk(a)
                   if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)})


def test_no_union_type_that_python_3_9_would_evaluate():
    offending = {}
    for path in python_files():
        lines = evaluated_unions(ast.parse(path.read_text(), filename=str(path)))
        if lines:
            offending[str(path.relative_to(ROOT))] = lines
    assert offending == {}


def test_union_check_sees_what_3_9_rejects_and_not_what_it_accepts():
    rejected = ast.parse("def f(x: int | None) -> str | None: pass\nX: int | None = None\n"
                         "isinstance(1, int | str)\n")
    assert evaluated_unions(rejected) == [1, 2, 3]
    accepted = ast.parse("from __future__ import annotations\ndef f(x: int | None) -> str | None:\n"
                         "    y: int | None = None\nflags = 1 | 2\n")
    assert evaluated_unions(accepted) == []

