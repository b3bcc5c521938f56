# SPDX-License-Identifier: GPL-2.0-or-later
"""The fence-agent contract: options (hamail.fence.options: stdin and command line), metadata and help
(hamail.fence.metadata), the power state machine, exact exit codes and one readable error line
(hamail.fence.agent). Agents live in hamail.agents (e.g. fence_ipmi)."""
