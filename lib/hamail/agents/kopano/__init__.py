# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:kopano: agent (parameters, the daemon's description for the shared lifecycle, its checks) and
config (Kopano's configuration files and listener specifications)."""
