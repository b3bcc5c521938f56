# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading the wsrep status variables: which members of a component are database servers."""

import pytest

from hamail.agents.galera.server import database_members


@pytest.mark.parametrize("status,expected", [
    # what node1 reported in the lab with node2 fenced and garbd in the component
    ({"wsrep_cluster_size": "2", "wsrep_incoming_addresses": "192.0.2.11:3306,"}, 1),
    ({"wsrep_cluster_size": "3", "wsrep_incoming_addresses": "192.0.2.11:3306,,192.0.2.12:3306"}, 2),
    ({"wsrep_cluster_size": "3", "wsrep_incoming_addresses": "a:3306,b:3306,c:3306"}, 3),
    ({"wsrep_cluster_size": "3"}, 3),  # a server that does not report addresses: its size
    ({"wsrep_cluster_size": ""}, None),
    ({}, None),
])
def test_database_members(status, expected):
    assert database_members(status) == expected
