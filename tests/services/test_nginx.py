# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:nginx against Debian's nginx with a private configuration on 127.0.0.1 (tests/services/web_support)."""

from __future__ import annotations

import os

import pytest

import web_support as web
from service_support import assert_clean, ocf, reason

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="nginx writes its pid and logs as root here")

AGENT = "nginx"
# A fixed answer of the site, matched in another case on purpose (heartbeat's regexes are case-insensitive).
DEPTH20 = {"test20url": "/health", "test20regex": "HAMAIL WEB OK"}


class TestNginx(web.WebAgentTests):
    """What every web agent must do, with nginx."""

    agent, site_class, depth20 = AGENT, web.NginxSite, DEPTH20
    status_param, conffile_param = "status10url", "test20conffile"
    broken_line, broken_expected = "bogus_directive on;\n", 'unknown directive "bogus_directive"'

    def test_status_url_is_read_from_the_configuration(self, site):
        """Without status10url, depth 10 GETs the location with stub_status on the first listen address; the
        default status10regex matches stub_status's page and nothing else."""
        params = site.params()
        assert ocf(AGENT, "start", params).returncode == 0
        elsewhere = site.write_config("moved.conf")
        elsewhere.write_text(elsewhere.read_text().replace("location = /nginx_status", "location = /moved_status"))
        moved = {"configfile": str(elsewhere)}  # the same pid file: the running server, read through another file
        wrong = ocf(AGENT, "monitor", moved, depth=10, interval_ms=10000)
        assert wrong.returncode == 1
        assert f"http://127.0.0.1:{site.port}/moved_status" in reason(wrong) and "404" in reason(wrong), reason(wrong)
        assert ocf(AGENT, "monitor", params, depth=10, interval_ms=10000).returncode == 0
        health = ocf(AGENT, "monitor", {**params, "status10url": "/health"}, depth=10, interval_ms=10000)
        assert health.returncode == 1 and "does not match" in reason(health), health.stderr

    def test_depth20_test_file_with_basic_authentication(self, site, tmp_path):
        """test20conffile's named test logs in with its user and password; a wrong password fails with 401 and the
        password appears nowhere in the agent's output."""
        params = site.params()
        assert ocf(AGENT, "start", params).returncode == 0
        tests = tmp_path / "web.tests"
        body = "url /secret/\nmatch SECRET PAGE OK\nuser {}\npassword {}\nend\n"
        tests.write_text("test health\nurl /health\nmatch hamail web ok\nend\n"
                         "test secret\n" + body.format(site.user, site.password) +
                         "test wrong\n" + body.format(site.user, "not-the-password"))
        tests.chmod(0o600)
        for name, code in (("health", 0), ("secret", 0), ("", 0), ("wrong", 1)):
            result = ocf(AGENT, "monitor", {**params, "test20conffile": str(tests), "test20name": name}, depth=20,
                         interval_ms=10000)
            assert result.returncode == code, f"test {name!r}: {result.stderr}"
            assert "not-the-password" not in result.stderr + result.stdout and site.password not in result.stderr
        assert "401" in reason(result), reason(result)
        without = ocf(AGENT, "monitor", {**params, "test20url": "/secret/", "test20regex": "secret"}, depth=20,
                      interval_ms=10000)
        assert without.returncode == 1 and "401" in reason(without), without.stderr

    def test_depth30_runs_the_external_command(self, site, tmp_path):
        params = site.params(**DEPTH20)
        assert ocf(AGENT, "start", params).returncode == 0
        script = tmp_path / "check.sh"
        script.write_text('#!/bin/sh\necho "checked $1" > "$2"\n'
                          '[ "$1" = good ] || { echo broken >&2; exit 3; }\n')
        script.chmod(0o755)
        mark = tmp_path / "mark"
        good = ocf(AGENT, "monitor", {**params, "external_monitor30_cmd": f"{script} good {mark}"}, depth=30,
                   interval_ms=10000)
        assert good.returncode == 0, good.stderr
        assert mark.read_text() == "checked good\n"  # the whole command line, not only its first word
        bad = ocf(AGENT, "monitor", {**params, "external_monitor30_cmd": f"{script} bad {mark}"}, depth=30,
                  interval_ms=10000)
        assert bad.returncode == 1 and "exit 3" in reason(bad) and "broken" in reason(bad), bad.stderr
        # depth 30 includes depth 20: a failing depth-20 test fails it before the command runs
        mark.unlink()
        failing = ocf(AGENT, "monitor", {**params, "test20regex": "nothing like it",
                                         "external_monitor30_cmd": f"{script} good {mark}"},
                      depth=30, interval_ms=10000)
        assert failing.returncode == 1 and "HTTP body" in reason(failing) and not mark.exists(), failing.stderr

    def test_malformed_test_file_is_a_configuration_error(self, site, tmp_path):
        tests = tmp_path / "web.tests"
        tests.write_text("test one\nurl /health\nmatch ok\nfrobnicate yes\nend\n")
        start = ocf(AGENT, "start", site.params(test20conffile=str(tests)))
        assert start.returncode == 6, start.stderr
        assert "line 4: frobnicate: unknown keyword" in reason(start), reason(start)
        assert_clean(start)
