# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail: OCF resource agents and STONITH agents for high-availability mail clusters."""

__version__ = "0.1.0"
