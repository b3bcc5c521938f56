# SPDX-License-Identifier: GPL-2.0-or-later
"""One module per third-party client library hamail talks through (mysql: PyMySQL), shared by the agents
that need it; the pyghmi adapter lives with fence_ipmi, its only user."""
