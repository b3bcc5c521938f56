# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for the packaging tests: each build (both its packages) runs once per test session."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # packaging_helpers, under any --import-mode
from packaging_helpers import PRODUCT, VBMC, build  # noqa: E402


@pytest.fixture(scope="session")
def debs():
    """{package name: .deb} of the hamail and hamail-vbmc packages, built together by packaging/build-deb."""
    return build("build-deb")


@pytest.fixture(scope="session")
def deb(debs):
    """dist/hamail_<version>_all.deb: the product."""
    return debs[PRODUCT]


@pytest.fixture(scope="session")
def vbmc_deb(debs):
    """dist/hamail-vbmc_<version>_all.deb: the lab's virtual BMC."""
    return debs[VBMC]


@pytest.fixture(scope="session")
def rpms():
    """{package name: .rpm} of hamail and its subpackage hamail-vbmc, built together by packaging/build-rpm."""
    return build("build-rpm")


@pytest.fixture(scope="session")
def rpm(rpms):
    """dist/hamail-<version>-1.noarch.rpm: the product."""
    return rpms[PRODUCT]


@pytest.fixture(scope="session")
def vbmc_rpm(rpms):
    """dist/hamail-vbmc-<version>-1.noarch.rpm: the lab's virtual BMC."""
    return rpms[VBMC]
