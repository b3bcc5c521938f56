"""Exit codes behave like an IntEnum; logging honours HA_* and never shows secrets."""

import io
import os

import pytest

from hamail.fence.exitcodes import FenceExit
from hamail.ocf.exitcodes import OCFExit
from hamail.ocf.log import Log, is_debug
from hamail.system.log import Scrubber
from hamail.secret import Secret


def test_codes_are_named_ints():
    assert OCFExit.NOT_RUNNING == 7 and OCFExit(7) is OCFExit.NOT_RUNNING
    assert OCFExit.DEGRADED_PROMOTED.name == "DEGRADED_PROMOTED" and OCFExit(191).value == 191
    assert [int(c) for c in OCFExit] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191]
    assert FenceExit.STATUS_OFF == 2
    with pytest.raises(ValueError):
        OCFExit(42)


def test_debug_flag_spellings():
    assert is_debug({"HA_debug": "1"}) and is_debug({"HA_debug": "yes"}) and not is_debug({"HA_debug": "0"})
    assert not is_debug({})


def test_logfile_and_debuglog(tmp_path):
    main, debug = tmp_path / "main.log", tmp_path / "debug.log"
    stderr = io.StringIO()
    log = Log("IPaddr2(vip)", {"HA_LOGFILE": str(main), "HA_DEBUGLOG": str(debug)}, [Secret("pw")], stderr)
    log.info("started with pw in %s", "text")
    log.debug("details")
    assert "IPaddr2(vip)" in main.read_text() and "started with *** in text" in main.read_text()
    assert "details" not in main.read_text() and "details" in debug.read_text()
    assert stderr.getvalue() == ""  # a log file is configured and stderr is no terminal


def test_no_destination_means_stderr_and_no_debug():
    stderr = io.StringIO()
    log = Log("x", {}, (), stderr)
    log.debug("hidden")
    log.warning("shown %d", 3)
    assert "shown 3" in stderr.getvalue() and "hidden" not in stderr.getvalue()


def test_ha_debug_sends_debug_to_stderr():
    stderr = io.StringIO()
    Log("x", {"HA_debug": "1"}, (), stderr).debug("visible")
    assert "visible" in stderr.getvalue()


def test_syslog_facility_is_used_with_the_right_priority():
    """A real datagram on /dev/log (bound here when no syslog daemon owns it) carries facility and level."""
    import socket
    if os.path.exists("/dev/log"):
        pytest.skip("a syslog daemon owns /dev/log on this machine")
    if os.geteuid() != 0:
        pytest.skip("binding /dev/log needs root")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("/dev/log")
    receiver.settimeout(5)
    try:
        stderr = io.StringIO()
        Log("galera(db)", {"HA_LOGFACILITY": "local3"}, [Secret("pw")], stderr).warning("pw leaked?")
        datagram = receiver.recv(4096).decode()
    finally:
        receiver.close()
        os.unlink("/dev/log")
    assert datagram.startswith(f"<{19 * 8 + 4}>")  # local3.warning
    assert "galera(db)[" in datagram and "WARNING: *** leaked?" in datagram and "pw" not in datagram.split(":", 1)[1].replace("WARNING", "")
    assert stderr.getvalue() == ""  # syslog was the destination


def test_scrubber():
    assert Scrubber([Secret("abc"), Secret("")]).scrub("xabcx abc") == "x***x ***"
