# SPDX-License-Identifier: GPL-2.0-or-later
"""The OCF resource-agent contract: what an agent module imports to declare itself and answer Pacemaker.

An agent declares its parameters (Param, Kind, ParamTable) and actions (ActionSpec) in an AgentSpec, writes
small action functions taking a Context, and hands them to Agent; run/main do the rest of the contract
(exit codes, exit reasons, stop and probe rules, deadlines, logging). See README's "How an agent is written".
"""

from hamail.ocf.agent import Agent, ConfigError, Context, NotInstalled, OCFEnv, OCFError, main, run
from hamail.ocf.exitcodes import OCFExit
from hamail.ocf.metadata import ActionSpec, AgentSpec
from hamail.params import Kind, Param, ParamTable

__all__ = ["ActionSpec", "Agent", "AgentSpec", "ConfigError", "Context", "Kind", "NotInstalled", "OCFEnv",
           "OCFError", "OCFExit", "Param", "ParamTable", "main", "run"]
