# SPDX-License-Identifier: GPL-2.0-or-later
"""What every service agent shares: the daemon lifecycle (daemon), protocol probes (probes) and the mail
round trip of depth-20 monitors (mailprobe)."""
