# SPDX-License-Identifier: GPL-2.0-or-later
"""The agents: one package per agent with its helpers beside it (a single-module agent is a module), each
importing only the core packages, never another agent. The executables in agents/ and fence/ are thin
wrappers around these modules."""
