# SPDX-License-Identifier: GPL-2.0-or-later
"""hamail.adapters.ldap (python-ldap) against a real slapd (loopback TCP and ldapi): the kinds of failure agents
decide on, each operation bounded by its deadline, the password never in an error's text."""

import os
import pathlib
import signal
import subprocess
import sys

import pytest

from hamail.adapters.ldap import AuthFailed, OperationFailed, TimedOut, Unavailable, connect, normalize_dn
from hamail.secret import Secret
from hamail.system.clock import Deadline

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parent.parent / "services")]
from service_support import free_port  # noqa: E402
from slapd_support import ADMIN, PASSWORD, SUFFIX, SlapdLab  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the private slapd runs as root")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A private slapd serving SUFFIX on loopback and an ldapi socket."""
    lab = SlapdLab(tmp_path_factory.mktemp("ldap") / "s")
    lab.pid.parent.mkdir()  # the agent makes it; here slapd is started by hand
    subprocess.run(["slapd", "-h", lab.services, "-F", str(lab.config)], check=True, timeout=30)
    try:
        yield lab
    finally:
        lab.kill()


def url(lab):
    """The server's TCP URL."""
    return f"ldap://127.0.0.1:{lab.port}"


def test_root_dse_bind_and_read(server):
    """rootDSE names the suffix; a bind as the root DN and a base read of the suffix work, over TCP and ldapi."""
    for where in (url(server), server.services.split()[1]):
        with connect(where, Deadline.after(5)) as conn:
            assert conn.root_dse()["namingContexts"] == [SUFFIX]
            conn.bind(ADMIN, Secret(PASSWORD))
            assert conn.read(SUFFIX) == {}


def test_failures_are_typed(server):
    """Refused port: Unavailable; wrong password: AuthFailed without the password; absent entry: OperationFailed 32."""
    with pytest.raises(Unavailable):
        with connect(f"ldap://127.0.0.1:{free_port()}", Deadline.after(5)) as conn:
            conn.root_dse()
    with connect(url(server), Deadline.after(5)) as conn:
        with pytest.raises(AuthFailed) as refused:
            conn.bind(ADMIN, Secret("Wrong-Pw-4471"))
        assert "Wrong-Pw-4471" not in str(refused.value) and "Invalid credentials" in str(refused.value)
        with pytest.raises(OperationFailed) as absent:
            conn.read("dc=absent,dc=test")
        assert absent.value.code == 32


def test_wedged_server_times_out_at_the_deadline(server):
    """A SIGSTOPped slapd accepts (the kernel does) but never answers: TimedOut, not a hang."""
    pid = server.main_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        with connect(url(server), Deadline.after(1.5)) as conn:
            with pytest.raises(TimedOut):
                conn.root_dse()
    finally:
        os.kill(pid, signal.SIGCONT)


def test_normalize_dn():
    """Spelling differences (case, spaces after commas) compare equal; different DNs do not."""
    assert normalize_dn("DC=Example, dc=TEST") == normalize_dn(SUFFIX)
    assert normalize_dn("dc=other,dc=test") != normalize_dn(SUFFIX)
