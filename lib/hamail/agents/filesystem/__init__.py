# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:Filesystem: agent (parameters and actions) and mounts (mountinfo, devices, holders in /proc)."""
