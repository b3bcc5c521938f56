# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for the galera tests: the lab clusters with real MariaDB Galera nodes in them."""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import galera_lab as gl  # noqa: E402


def _lab(request, fixture: str, variable: str):
    """The session's lab cluster, or (for development next to other sessions) one already running."""
    workdir = os.environ.get(variable)
    if workdir:
        from hamail_lab.cluster import Cluster
        return Cluster.load(pathlib.Path(workdir))
    return request.getfixturevalue(fixture)


@pytest.fixture(scope="session")
def lab1(request):
    """A 1-node cluster (HAMAIL_GALERA_LAB1=<workdir> reuses a running lab instead of cluster1)."""
    return _lab(request, "cluster1", "HAMAIL_GALERA_LAB1")


@pytest.fixture(scope="session")
def lab3(request):
    """A 3-node cluster (HAMAIL_GALERA_LAB3=<workdir> reuses a running lab instead of cluster3)."""
    return _lab(request, "cluster3", "HAMAIL_GALERA_LAB3")


@pytest.fixture(scope="session")
def galera1(lab1):
    """node1 of the 1-node lab with an initialised (not running) Galera datadir."""
    gl.init_node(lab1, "node1")
    return lab1
