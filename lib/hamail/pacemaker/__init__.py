# SPDX-License-Identifier: GPL-2.0-or-later
"""Pacemaker access for agents, through Pacemaker's command-line tools and the command runner.

attributes (transient node attributes through attrd, permanent ones in the CIB), scores (promotion scores),
crmmon (crm_mon's XML as typed objects), fencing (the fencing history and the durable fencing records that
survive a total power loss), notify (clone notification data). Failures raise PacemakerError, which the OCF
layer turns into a generic, retryable failure; nothing here depends on the OCF layer.
"""

__all__ = ["PacemakerError", "attribute_target"]


class PacemakerError(Exception):
    """A Pacemaker tool failed (the cluster or attrd did not answer): a generic, retryable failure."""


def attribute_target(environ, local: str) -> str:
    """The node whose attributes a resource reads and writes: the bundle's host when its meta asks for it."""
    # Pacemaker's rule (crm_attribute and attrd_updater without -N; ocf_attribute_target in ocf-shellfuncs): a
    # resource in a bundle with container-attribute-target=host keeps its node attributes, promotion score
    # included, on the node running the container (physical_host), where the scheduler looks for them. The guest
    # node's own name (on_node) would put them where nothing reads them.
    host = environ.get("OCF_RESKEY_CRM_meta_physical_host", "")
    if host and environ.get("OCF_RESKEY_CRM_meta_container_attribute_target", "").lower() == "host":
        return host
    return local
