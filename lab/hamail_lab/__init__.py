"""hamail lab: real Pacemaker clusters in namespaces on this machine, for tests and ``make lab``."""

from .agents import install_agents, uninstall_agents
from .cluster import Cluster, ClusterStatus, NodeStatus, parse_crm_mon
from .hostsys import LabError, wait_for

__all__ = ["Cluster", "ClusterStatus", "NodeStatus", "LabError", "install_agents", "uninstall_agents",
           "parse_crm_mon", "wait_for"]
