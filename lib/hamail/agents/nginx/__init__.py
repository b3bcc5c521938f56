# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:nginx: the nginx web server (agent), with what it reads from nginx's configuration (conf)."""
