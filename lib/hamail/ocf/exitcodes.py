# SPDX-License-Identifier: GPL-2.0-or-later
"""Exit codes of the OCF resource-agent API."""

from hamail.codes import CodeTable

__all__ = ["OCFExit"]


class OCFExit(metaclass=CodeTable):
    """OCF exit codes; keep in sync with Pacemaker's include/crm/common/results.h (enum ocf_exitcode)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191
