# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:mysql: agent (parameters and actions), server (the mariadbd Service: listeners from its option
files, configuration check, directories and enable_creation, the depth-10 SELECTs over PyMySQL)."""
