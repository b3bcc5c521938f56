# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pytest setup: the checkout's lib/ and lab/ on sys.path, the lab cluster fixtures, agent helpers."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
for path in (str(ROOT / "lib"), str(ROOT / "lab"), str(ROOT / "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

from testlib import run_agent  # noqa: E402

if (ROOT / "lab" / "hamail_lab" / "fixtures.py").exists():
    pytest_plugins = ["hamail_lab.fixtures"]


@pytest.fixture
def agent():
    """The run_agent helper as a fixture."""
    return run_agent


@pytest.fixture(scope="session")
def checkout():
    """The repository root."""
    return ROOT
