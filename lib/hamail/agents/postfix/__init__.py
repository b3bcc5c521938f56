# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:postfix: agent (parameters, the daemon's lifecycle and probes) and services (master.cf's SMTP listeners)."""
