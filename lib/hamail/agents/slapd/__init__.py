# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:slapd: OpenLDAP's slapd, with a monitor that speaks LDAP (rootDSE, bind, suffix searches)."""
