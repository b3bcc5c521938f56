# SPDX-License-Identifier: GPL-2.0-or-later
"""Bench rows of apache vs heartbeat's on one running apache2 (web_rows): depth 0, and ours' depth 10 beside
heartbeat's depth 0, which GETs the status page as ours' depth 10 does."""

from web_rows import web_cases


def cases() -> list:
    """Monitor depth 0 and 10."""
    return web_cases("apache", "ApacheSite", "0")
