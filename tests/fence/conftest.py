# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures of the fence tests (defined in fence_support, importable under a unique name)."""

import pytest

from fence_support import fence, other_pyghmi, vbmc, vbmcs  # noqa: F401

__all__ = ["fence", "other_pyghmi", "vbmc", "vbmcs"]  # re-exported: pytest finds fixtures by name in conftest


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Run every fence test in its own directory: garbage options such as debug_file=on write files there."""
    monkeypatch.chdir(tmp_path)
