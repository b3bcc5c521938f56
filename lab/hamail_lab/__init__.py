# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail lab: real Pacemaker clusters in namespaces on this machine, for tests and ``make lab``."""

from .agents import uninstall_agents
from .cluster import Cluster, ClusterStatus, NodeStatus, parse_crm_mon
from .hostsys import LabError, wait_for

__all__ = ["Cluster", "ClusterStatus", "NodeStatus", "LabError", "uninstall_agents",
           "parse_crm_mon", "wait_for"]
