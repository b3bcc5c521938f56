# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:garbd: the Galera arbitrator (a quorum-only member), with its component read from garbd's log."""
