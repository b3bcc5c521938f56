"""README's example agent is real: extracted from README.md and run as pacemaker-execd would run it."""

import os
import re
import subprocess

from testlib import ROOT


def example(tmp_path):
    """README's example agent written to a file that runs it with the checkout's library."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r'```python\n("""ocf:hamail:Example.*?)```', text, re.S).group(1)
    path = tmp_path / "Example"
    prologue = f"import sys\nsys.path.insert(0, {str(ROOT / 'lib')!r})\nsys.path.append('/usr/lib/python3/dist-packages')\n"
    path.write_text(prologue + code)
    return path


def run(path, action, interval=0, **params):
    """One action with OCF_RESKEY_* parameters."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_RESKEY_CRM_meta_interval": str(interval),
           "OCF_RESKEY_CRM_meta_timeout": "20000"}
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    return subprocess.run(["/usr/bin/python3", "-S", str(path), action], env=env, capture_output=True, text=True,
                          timeout=30)


def test_readme_example_agent_follows_the_contract(tmp_path):
    path = example(tmp_path)
    meta = run(path, "meta-data")
    assert meta.returncode == 0 and '<parameter name="pidfile"' in meta.stdout and "<actions>" in meta.stdout
    pidfile = str(tmp_path / "example.pid")
    assert run(path, "validate-all").returncode == 6  # pidfile is required
    absent = {"binary": "/nonexistent/exampled", "pidfile": pidfile}
    assert run(path, "monitor", **absent).returncode == 7  # a probe on a node without the software
    failed = run(path, "monitor", interval=10000, **absent)
    assert failed.returncode == 5 and "ocf-exit-reason:/nonexistent/exampled is not installed" in failed.stderr
    present = {"binary": "/bin/sleep", "pidfile": pidfile}
    assert run(path, "monitor", **present).returncode == 7
    with open(pidfile, "w", encoding="ascii") as handle:
        handle.write(str(os.getpid()))
    assert run(path, "monitor", interval=10000, **present).returncode == 0
