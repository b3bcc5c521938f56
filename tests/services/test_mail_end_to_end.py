# SPDX-License-Identifier: GPL-2.0-or-later
"""Depth 20 end to end on a real pair, both run by our agents: a probe message submitted to Postfix over SMTP,
delivered by Postfix over LMTP to Dovecot, read back over Dovecot's IMAP and deleted; the probe mailbox stays
empty. When a link of the chain breaks, the depth-20 monitor of the agent whose path crosses it fails naming the
step, while depth 10 (each daemon answering on its own) still passes."""

from __future__ import annotations

import os

import pytest

from mail_support import mail_instances
from service_support import assert_clean, ocf, reason

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the daemons' masters need root")


@pytest.fixture
def mail_pair(tmp_path):
    """mail_support.mail_instances: a Dovecot and a Postfix delivering to it, cleaned up after the test."""
    with mail_instances(tmp_path) as labs:
        yield labs


def act(agent, lab, action, dovecot=None, **kwargs):
    """One action of ocf:hamail:<agent> on its lab (postfix's depth-20 probe reads back through dovecot)."""
    params = lab.params(dovecot) if agent == "postfix" else lab.params()
    result = ocf(agent, action, params, rsctmp=lab.rsctmp, **kwargs)
    assert_clean(result)
    return result


def test_postfix_to_dovecot_lmtp_to_imap_read_back(mail_pair):
    dovecot, postfix = mail_pair
    assert act("dovecot", dovecot, "start").returncode == 0
    assert act("postfix", postfix, "start", dovecot).returncode == 0
    for _ in range(3):
        result = act("postfix", postfix, "monitor", dovecot, depth=20, interval_ms=60000)
        assert result.returncode == 0, result.stderr
        result = act("dovecot", dovecot, "monitor", depth=20, interval_ms=60000)
        assert result.returncode == 0, result.stderr
    assert dovecot.messages() == [], "the probe mailbox must stay empty"
    delivered = [line for line in postfix.log.read_text().splitlines()
                 if f"relay=127.0.0.1[127.0.0.1]:{dovecot.lmtp}" in line and "status=sent" in line]
    assert len(delivered) == 3, "each postfix depth-20 probe went through Dovecot's LMTP"

    # Dovecot's LMTP down (its IMAP still up): Postfix defers the probe, the read-back never finds it.
    lmtp_only = dovecot.config.read_text().replace(f"port = {dovecot.lmtp}\n", "port = 0\n")
    dovecot.config.write_text(lmtp_only)
    assert ocf("dovecot", "reload", dovecot.params(), rsctmp=dovecot.rsctmp).returncode == 0
    result = act("postfix", postfix, "monitor", dovecot, depth=20, interval_ms=60000, timeout_ms=6000)
    assert result.returncode == 1
    assert "IMAP SEARCH" in reason(result) and "did not arrive" in reason(result), reason(result)
    assert act("postfix", postfix, "monitor", dovecot, depth=10, interval_ms=60000).returncode == 0

    assert act("postfix", postfix, "stop").returncode == 0
    assert act("dovecot", dovecot, "stop").returncode == 0
    assert postfix.master() is None and dovecot.master() is None
