# SPDX-License-Identifier: GPL-2.0-or-later
"""Pacemaker access for agents, through Pacemaker's command-line tools and the command runner.

attributes (transient node attributes through attrd, permanent ones in the CIB), scores (promotion scores),
crmmon (crm_mon's XML as typed objects), fencing (the fencing history and the durable fencing records that
survive a total power loss), notify (clone notification data). Failures raise PacemakerError, which the OCF
layer turns into a generic, retryable failure; nothing here depends on the OCF layer.
"""

__all__ = ["PacemakerError"]


class PacemakerError(Exception):
    """A Pacemaker tool failed (the cluster or attrd did not answer): a generic, retryable failure."""
