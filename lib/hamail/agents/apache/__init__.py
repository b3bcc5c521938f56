# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:apache: Apache httpd (agent), with what it reads from httpd's configuration (conf)."""
