# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:galera: agent (parameters and actions), recovery (the pure bootstrap decision), cluster (what a
node publishes, and the decision's inputs gathered from Pacemaker), positions (grastate.dat, gvwstate.dat,
--wsrep-recover), server (the mariadbd process and its status over PyMySQL)."""
