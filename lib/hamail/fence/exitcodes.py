# SPDX-License-Identifier: GPL-2.0-or-later
"""Exit codes of the fence-agent API."""

from hamail.codes import CodeTable

__all__ = ["FenceExit"]


class FenceExit(metaclass=CodeTable):
    """Exit codes of the fence-agent API (FenceAgentAPI.md)."""

    SUCCESS = 0
    ERROR = 1
    STATUS_OFF = 2
