# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:dovecot: agent (parameters, lifecycle, probes) and listeners (where doveconf says it answers)."""
