# SPDX-License-Identifier: GPL-2.0-or-later
"""The library's layering, checked over its whole import graph (imports inside functions included).

Core packages never import an agent package, agents never import each other, nothing imports the lab; each
core layer imports only the layers below it; processes are started only by hamail.system; each third-party
protocol library is imported by its one adapter module; no module edits sys.modules or binds C libraries
other than IPaddr2's setns.
"""

import ast
import pathlib

import pytest

LIB = pathlib.Path(__file__).resolve().parents[2] / "lib"

# What each core layer may import from hamail (besides itself). Agents may import every core layer.
FOUNDATION = ("hamail", "hamail.secret", "hamail.codes", "hamail.params")
LAYERS = {
    "hamail.system": FOUNDATION,
    "hamail.pacemaker": FOUNDATION + ("hamail.system",),
    "hamail.ocf": FOUNDATION + ("hamail.system", "hamail.pacemaker"),
    "hamail.fence": FOUNDATION + ("hamail.system",),
    "hamail.adapters": FOUNDATION + ("hamail.system",),
    "hamail.promotable": FOUNDATION + ("hamail.system", "hamail.pacemaker", "hamail.ocf"),
    "hamail.service": FOUNDATION + ("hamail.system", "hamail.pacemaker", "hamail.ocf", "hamail.adapters"),
}
FOREIGN = ("hamail_lab", "hamail_vbmc", "lab", "tests", "testlib")
# Modules that start processes, and the only places allowed to.
PROCESS_MODULES = ("subprocess", "pty", "multiprocessing")
PROCESS_CALLS = ("fork", "forkpty", "system", "popen", "spawnv", "spawnve", "execv", "execve", "execvp", "posix_spawn")
PROCESS_OWNERS = ("hamail.system.runner", "hamail.system.bounded")
# Third-party client libraries and their one adapter module each.
ADAPTERS = {"pymysql": "hamail.adapters.mysql", "ldap": "hamail.adapters.ldap",
            "pyghmi": "hamail.agents.fence_ipmi.pyghmi_session"}
# ctypes: only setns(2) for IPaddr2's network namespaces (os.setns arrives with Python 3.12).
CTYPES_USERS = ("hamail.agents.ipaddr2.agent",)


def module_name(root: pathlib.Path, path: pathlib.Path) -> str:
    """hamail.x.y for lib/hamail/x/y.py (packages by their __init__)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: pathlib.Path, path: pathlib.Path) -> list:
    """(imported module, line) for every import statement in the file, at any depth."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # `from hamail.agents.ipaddr2 import netlink` imports the submodule: count both.
            found.append((target, node.lineno))
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return found


def within(module: str, prefix: str) -> bool:
    """Whether module is prefix or inside it."""
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    """The core layer a hamail module belongs to (None for agents and the foundation)."""
    return next((layer for layer in LAYERS if within(module, layer)), None)


def agent_of(module: str) -> str | None:
    """hamail.agents.<name> for a module of an agent (None elsewhere)."""
    parts = module.split(".")
    return ".".join(parts[:3]) if len(parts) >= 3 and parts[:2] == ["hamail", "agents"] else None


def violations(root: pathlib.Path) -> list[str]:
    """Every broken layering rule under root (a directory holding the hamail package)."""
    problems = []
    for path in sorted((root / "hamail").rglob("*.py")):
        me = module_name(root, path)
        tree = ast.parse(path.read_text(), str(path))
        for target, line in imports(root, path):
            where = f"{me}:{line} imports {target}"
            if any(within(target, foreign) for foreign in FOREIGN):
                problems.append(f"{where}: the library never imports the lab or the tests")
            if within(target, "hamail.agents") and agent_of(target) and agent_of(target) != agent_of(me):
                problems.append(f"{where}: " + ("agents never import each other" if agent_of(me)
                                                 else "core packages never import an agent"))
            layer = layer_of(me)
            if layer and within(target, "hamail") and not within(target, layer) and not any(
                    target == allowed or within(target, allowed) if allowed != "hamail" else target == "hamail"
                    for allowed in LAYERS[layer]):
                problems.append(f"{where}: {layer} may only import {', '.join(LAYERS[layer])}")
            if target.split(".")[0] in PROCESS_MODULES and me not in PROCESS_OWNERS:
                problems.append(f"{where}: processes are started through hamail.system.runner")
            top = target.split(".")[0]
            if top in ADAPTERS and me != ADAPTERS[top]:
                problems.append(f"{where}: {top} is used only through {ADAPTERS[top]}")
            if top == "ctypes" and me not in CTYPES_USERS:
                problems.append(f"{where}: no C library bindings outside {', '.join(CTYPES_USERS)}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
                    and node.attr in PROCESS_CALLS and me not in PROCESS_OWNERS):
                problems.append(f"{me}:{node.lineno} calls os.{node.attr}: processes are started through "
                                "hamail.system.runner")
            if isinstance(node, ast.Attribute) and node.attr == "modules" and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys":
                problems.append(f"{me}:{node.lineno} touches sys.modules: no module is patched or hidden")
    return problems


def test_the_library_keeps_its_layers():
    assert violations(LIB) == []


def write(root: pathlib.Path, name: str, text: str) -> None:
    """Create one module of a synthetic library."""
    path = root / (name.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if str(parent) != ".":
            (root / parent / "__init__.py").touch()
    path.write_text(text)


@pytest.mark.parametrize("module, text, words", [
    ("hamail.ocf.agent", "def f():\n    from hamail.agents.galera import agent\n", "core packages never import"),
    ("hamail.agents.galera.agent", "from hamail.agents.ipaddr2 import netlink\n", "agents never import"),
    ("hamail.agents.galera.agent", "from ..ipaddr2 import netlink\n", "agents never import"),
    ("hamail.pacemaker.attributes", "from hamail.ocf import OCFError\n", "hamail.pacemaker may only import"),
    ("hamail.system.runner", "import hamail.fence.agent\n", "hamail.system may only import"),
    ("hamail.fence.agent", "from hamail.ocf.exitcodes import OCFExit\n", "hamail.fence may only import"),
    ("hamail.agents.dummy", "import hamail_lab.cluster\n", "never imports the lab"),
    ("hamail.agents.galera.server", "import subprocess\n", "through hamail.system.runner"),
    ("hamail.agents.filesystem.agent", "import os\nos.fork()\n", "calls os.fork"),
    ("hamail.agents.galera.agent", "def f():\n    import pymysql\n", "pymysql is used only through"),
    ("hamail.agents.fence_ipmi.agent", "from pyghmi.ipmi.private import session\n", "pyghmi is used only through"),
    ("hamail.agents.fence_ipmi.aes", "import ctypes\n", "no C library bindings"),
    ("hamail.adapters.mysql", "import sys\nsys.modules['ssl'] = None\n", "touches sys.modules"),
])
def test_the_check_catches_each_kind_of_violation(tmp_path, module, text, words):
    write(tmp_path, "hamail.secret", "")
    write(tmp_path, module, text)
    found = violations(tmp_path)
    assert any(words in problem for problem in found), found


def test_allowed_imports_pass(tmp_path):
    write(tmp_path, "hamail.agents.galera.agent",
          "from hamail.agents.galera import server\nfrom . import positions\nfrom hamail.ocf import Agent\n"
          "from hamail.pacemaker.fencing import FencingRecords\nfrom hamail.adapters import mysql\n")
    write(tmp_path, "hamail.ocf.agent", "from hamail.pacemaker import PacemakerError\nfrom hamail.params import Kind\n")
    write(tmp_path, "hamail.system.runner", "import subprocess\nimport os\nos.fork()\n")
    write(tmp_path, "hamail.adapters.mysql", "import pymysql\n")
    assert violations(tmp_path) == []
