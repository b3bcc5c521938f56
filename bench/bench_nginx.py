# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of nginx vs heartbeat's on one running nginx (web_rows): depth 0 and depth 10 of both."""

from web_rows import web_cases


def cases() -> list:
    """Monitor depth 0 and 10."""
    return web_cases("nginx", "NginxSite", "10", "status10url")
