# SPDX-License-Identifier: GPL-2.0-or-later
"""stonith:fence_ipmi: the agent (options, rules), its IPMI device, and the one adapter to pyghmi."""
