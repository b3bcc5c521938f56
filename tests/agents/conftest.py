# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures of the IPaddr2 and Filesystem tests (defined in agent_support, importable under a unique name)."""

from agent_support import fs, ip2, looplab, netpair  # noqa: F401
