"""Fixtures for the packaging tests: each package is built once per test session."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # packaging_helpers, under any --import-mode
from packaging_helpers import build  # noqa: E402


@pytest.fixture(scope="session")
def deb():
    """dist/hamail_<version>_all.deb, built by packaging/build-deb."""
    return build("build-deb")


@pytest.fixture(scope="session")
def rpm():
    """dist/hamail-<version>-1.noarch.rpm, built by packaging/build-rpm."""
    return build("build-rpm")
