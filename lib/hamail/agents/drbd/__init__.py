# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:drbd: the agent (agent), the state model and its parsers (state), the score policy (policy)."""
