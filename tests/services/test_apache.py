# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:apache against Debian's apache2 with a private configuration on 127.0.0.1 (tests/services/web_support)."""

from __future__ import annotations

import os

import pytest

import web_support as web
from service_support import assert_clean, ocf, reason

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="apache2 binds and switches to www-data as root")

AGENT = "apache"
# mod_info's page: a depth-20 test of a page other than the status page (regex in another case on purpose:
# heartbeat's regexes are case-insensitive).
DEPTH20 = {"testurl": "/server-info", "testregex10": "SERVER SETTINGS"}


class TestApache(web.WebAgentTests):
    """What every web agent must do, with apache2."""

    agent, site_class, depth20 = AGENT, web.ApacheSite, DEPTH20
    status_param, conffile_param = "statusurl", "testconffile"
    broken_line, broken_expected = "BogusDirective on\n", "AH00526: Syntax error on line"

    def test_status_url_is_read_from_the_configuration(self, site):
        """Without statusurl, depth 10 GETs the <Location> whose handler is server-status on the first Listen."""
        params = site.params()
        assert ocf(AGENT, "start", params).returncode == 0
        # server-status's page has no 'Server Settings' (server-info's has): the regex proves which page was read
        wrong = ocf(AGENT, "monitor", {**params, "testregex": "server settings"}, depth=10, interval_ms=10000)
        assert wrong.returncode == 1
        assert f"http://127.0.0.1:{site.port}/server-status" in reason(wrong), reason(wrong)
        right = ocf(AGENT, "monitor", {**params, "testregex": "APACHE SERVER STATUS"}, depth=10, interval_ms=10000)
        assert right.returncode == 0, right.stderr

    def test_depth20_checks_testurl_and_testconffile(self, site, tmp_path):
        params = site.params()
        assert ocf(AGENT, "start", params).returncode == 0
        mismatch = ocf(AGENT, "monitor", {**params, "testurl": "/server-info", "testregex10": "no such text"},
                       depth=20, interval_ms=10000)
        assert mismatch.returncode == 1
        assert "HTTP body" in reason(mismatch) and "/server-info" in reason(mismatch), reason(mismatch)
        tests = tmp_path / "web.tests"
        tests.write_text("test other\nurl /server-status\nmatch nothing like this\nend\n"
                         "test info\n# mod_info's page\nurl /server-info\nmatch module name\nclient curl\nend\n")
        tests.chmod(0o600)
        named = ocf(AGENT, "monitor", {**params, "testconffile": str(tests), "testname": "info"}, depth=20,
                    interval_ms=10000)
        assert named.returncode == 0, named.stderr
        first = ocf(AGENT, "monitor", {**params, "testconffile": str(tests)}, depth=20, interval_ms=10000)
        assert first.returncode == 1 and "nothing like this" in reason(first), first.stderr
        # depth 10 does not run the depth-20 test
        depth10 = ocf(AGENT, "monitor", {**params, "testconffile": str(tests)}, depth=10, interval_ms=10000)
        assert depth10.returncode == 0, depth10.stderr

    def test_half_configured_test_warns_then_fails_depth20(self, site):
        """testurl without testregex10: heartbeat tolerates it until its monitor: ours warns at start, and the
        depth-20 monitor fails with the configuration code and a reason naming what is missing."""
        params = site.params(testurl="/server-info")
        start = ocf(AGENT, "start", params)
        assert start.returncode == 0, start.stderr
        assert "WARNING" in start.stderr and "testregex10" in start.stderr
        result = ocf(AGENT, "monitor", params, depth=20, interval_ms=10000)
        assert result.returncode == 6 and "regular expression" in reason(result), result.stderr
        assert_clean(result)

    def test_envfiles_provide_configuration_variables(self, site, tmp_path):
        """${VAR} in the configuration comes from envfiles (as Debian's envvars gives APACHE_PID_FILE)."""
        envfile = tmp_path / "envvars"
        envfile.write_text(f"export HAMAIL_TEST_PID={site.pid_file}\n")
        config = site.write_config("env.conf")
        config.write_text(config.read_text().replace(f"PidFile {site.pid_file}", "PidFile ${HAMAIL_TEST_PID}"))
        params = {"configfile": str(config), "envfiles": str(envfile)}
        assert ocf(AGENT, "start", params).returncode == 0
        assert site.main_pid() in site.pids()
        assert ocf(AGENT, "monitor", params, interval_ms=10000).returncode == 0
        assert ocf(AGENT, "stop", params).returncode == 0
        assert site.alive_pids() == []
