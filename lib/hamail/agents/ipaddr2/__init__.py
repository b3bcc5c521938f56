# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:IPaddr2: agent (parameters and actions) and netlink (rtnetlink, GARP and unsolicited NA)."""
