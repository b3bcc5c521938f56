# SPDX-License-Identifier: GPL-2.0-or-later
"""What the web agents read from configuration files (no server runs): apache's and nginx's configuration
readers, and README.webapps test files."""

from __future__ import annotations

import pytest

from hamail.agents.apache import conf as apache_conf
from hamail.agents.nginx import conf as nginx_conf
from hamail.ocf import ConfigError, NotInstalled
from hamail.service.web import local_url, read_test_file


def test_apache_includes_variables_and_status_location(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("Listen [::1]:8443 https\n")
    (tmp_path / "conf.d" / "a.conf").write_text("Listen ${PORT_A}\n")
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "status.conf").write_text(
        '<Location "/status-here">\n  SetHandler server-status\n</Location>\n<LocationMatch "^/x">\n'
        "  SetHandler none\n</LocationMatch>\n")
    main = tmp_path / "httpd.conf"
    main.write_text(f"ServerRoot {tmp_path}\nDefine RUN ${{RUNDIR}}/r\n# PidFile /not/this\n"
                    "PidFile ${RUN}/httpd.pid\nInclude conf.d\nIncludeOptional mods/*.conf\n"
                    "IncludeOptional absent/*.conf\nListen \\\n  127.0.0.1:8080\n")
    parsed = apache_conf.parse(str(main), {"PORT_A": "81", "RUNDIR": "/run/x"})
    assert parsed.pid_file == "/run/x/r/httpd.pid"
    assert parsed.listens == ["81", "[::1]:8443", "127.0.0.1:8080"]  # directory files sorted, continuation joined
    assert parsed.status_location == "/status-here"
    assert not parsed.unexpanded
    assert apache_conf.parse(str(main), {}).unexpanded  # ${PORT_A} and ${RUNDIR} left for envfiles


def test_apache_include_loop_ends(tmp_path):
    main = tmp_path / "loop.conf"
    main.write_text(f"Include {main}\nListen 80\n")
    assert len(apache_conf.parse(str(main), {}).listens) == apache_conf.MAX_DEPTH + 1


def test_nginx_tokens_includes_and_locations(tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "one.conf").write_text(
        "server { listen 127.0.0.1:8443 ssl http2; # a comment; listen 9;\n"
        '  location ^~ "/basic_status" { stub_status; }\n  location / { return 200 "a;b{c}"; }\n}\n')
    main = tmp_path / "nginx.conf"
    main.write_text("pid run/nginx.pid;\nevents {}\nhttp { include sites/*.conf;\n"
                    "  server { listen 8080 default_server; listen unix:/run/n.sock; pid /not/main/context; } }\n")
    parsed = nginx_conf.parse(str(main))
    assert parsed.pid == "run/nginx.pid"
    assert [(item.address, item.ssl) for item in parsed.listens] == [
        ("127.0.0.1:8443", True), ("8080", False), ("unix:/run/n.sock", False)]
    assert parsed.status_location == "/basic_status"


def test_test_file_named_first_and_errors(tmp_path):
    tests = tmp_path / "web.tests"
    tests.write_text("# tests\ntest one\nurl /a\nmatch A+\nend\ntest two\nurl http://h:1/b\nmatch B\n"
                     "user u\npassword p w\nclient_opts -k\nend\n")
    tests.chmod(0o600)
    assert read_test_file(str(tests), "", "f")[:3] == ("/a", "A+", "")
    url, regex, user, password = read_test_file(str(tests), "two", "f")
    assert (url, regex, user, password.reveal()) == ("http://h:1/b", "B", "u", "p w")
    warned = []
    tests.chmod(0o644)
    read_test_file(str(tests), "two", "f", warned.append)
    assert warned and "others can read" in warned[0]
    with pytest.raises(ConfigError, match="no test 'three'"):
        read_test_file(str(tests), "three", "f")
    tests.write_text("test one\nurl /a\nuser only\nend\n")
    with pytest.raises(ConfigError, match="both user and password"):
        read_test_file(str(tests), "", "f")
    with pytest.raises(NotInstalled, match="parameter f: cannot read"):
        read_test_file(str(tmp_path / "absent"), "", "f")


def test_local_url():
    assert local_url("http://127.0.0.1:8", "/x") == "http://127.0.0.1:8/x"
    assert local_url("http://127.0.0.1:8", " https://h/y ") == "https://h/y"
