# SPDX-License-Identifier: GPL-2.0-or-later
"""fence_ipmi against real hamail-vbmc instances on 127.0.0.1: every action, both input forms, failures."""

import subprocess

import pytest

from fence_support import (
    CLEAN_ENV, FENCE_IPMI, KG_HEX, PASSWORD, cli_for, free_udp_port, pyghmi_sources, run_fence, stdin_for, timed,
)


def status(vbmc, **extra) -> int:
    """fence_ipmi's status exit code for this vbmc."""
    return run_fence(stdin=stdin_for(vbmc, "status", **extra)).returncode


def power_log(vbmc) -> list[str]:
    """The power operations the vbmc carried out, in order ('power off (was on)', 'power cycle (was on)', ...)."""
    return [line[line.index("power "):] for line in vbmc.log_text().splitlines() if " (was " in line]


def succeeded(result, stdout: str) -> None:
    """A successful run that printed exactly this."""
    assert (result.returncode, result.stdout) == (0, stdout), result.stderr


def one_error_line(result, kind: str) -> str:
    """The single stderr line of a failure, checked for its kind."""
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"fence_ipmi: error: {kind}:"), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("form", ["stdin", "cli"])
def test_every_action_in_both_forms(vbmc, form):
    def act(action, *extra):
        if form == "stdin":
            return run_fence(stdin=stdin_for(vbmc, action, **dict(e.split("=", 1) for e in extra)))
        return run_fence(cli_for(vbmc, action, *[f"--{e.replace('_', '-')}" for e in extra]))

    result = act("status")
    assert (result.returncode, result.stdout) == (0, "Status: ON\n")
    assert act("monitor").returncode == 0
    result = act("off")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Success: Powered OFF\n", "")
    result = act("status")
    assert (result.returncode, result.stdout) == (2, "Status: OFF\n")
    assert act("monitor").returncode == 0
    result = act("on")
    assert (result.returncode, result.stdout) == (0, "Success: Powered ON\n")
    assert act("status").returncode == 0
    result = act("reboot")
    assert (result.returncode, result.stdout) == (0, "Success: Rebooted\n")
    assert act("status").returncode == 0
    assert power_log(vbmc) == ["power off (was on)", "power on (was off)"] * 2
    assert act("validate-all").returncode == 0


def test_long_options_with_equals(vbmc):
    result = run_fence(["--action=status", "--ip=127.0.0.1", f"--ipport={vbmc.port}", "--username=admin",
                        f"--password={PASSWORD}", "--lanplus", "--privlvl=administrator", "-vvv"])
    assert (result.returncode, result.stdout) == (0, "Status: ON\n")


def test_legacy_aliases_on_stdin(vbmc):
    text = (f"option=off\nipaddr=127.0.0.1\nipport={vbmc.port}\nlogin=admin\npasswd={PASSWORD}\n"
            "port=node1\nplug=whatever\nnodename=node1\n")
    succeeded(run_fence(stdin=text), "Success: Powered OFF\n")
    assert status(vbmc) == 2


def test_comments_blank_lines_unknown_keys_and_last_duplicate(vbmc):
    text = (f"# a comment\n\naction=off\naction=status\nip=127.0.0.1\nipport=1\nipport={vbmc.port}\n"
            f"username=admin\npassword={PASSWORD}\nsome_future_key=1\npcmk_host_list=node1\ngarbage line\n")
    result = run_fence(stdin=text)
    assert (result.returncode, result.stdout) == (0, "Status: ON\n")


def test_already_off_and_already_on_send_no_command(vbmcs):
    vbmc = vbmcs.start("--power", "off")
    succeeded(run_fence(stdin=stdin_for(vbmc, "off")), "Success: Powered OFF\n")
    assert power_log(vbmc) == []
    succeeded(run_fence(stdin=stdin_for(vbmc, "on")), "Success: Powered ON\n")
    succeeded(run_fence(stdin=stdin_for(vbmc, "on")), "Success: Powered ON\n")
    assert power_log(vbmc) == ["power on (was off)"]


def test_reboot_of_an_off_node_powers_it_on(vbmcs):
    vbmc = vbmcs.start("--power", "off")
    succeeded(run_fence(stdin=stdin_for(vbmc, "reboot")), "Success: Rebooted\n")
    assert status(vbmc) == 0
    assert power_log(vbmc) == ["power on (was off)"]


def test_cycle_on_an_off_node_succeeds(vbmcs):
    # Upstream #596: a BMC refuses cycle when off ("not supported in present state"); the off part is done.
    vbmc = vbmcs.start("--power", "off")
    succeeded(run_fence(stdin=stdin_for(vbmc, "reboot", method="cycle")), "Success: Rebooted\n")
    assert status(vbmc) == 0
    assert power_log(vbmc) == ["power on (was off)"]


def test_cycle_on_a_running_node(vbmc):
    """One power cycle command, not an off and an on."""
    succeeded(run_fence(stdin=stdin_for(vbmc, "reboot", method="cycle")), "Success: Rebooted\n")
    assert power_log(vbmc) == ["power cycle (was on)"]
    assert status(vbmc) == 0


def test_busy_bmc_is_retried(vbmcs):
    vbmc = vbmcs.start("--control-fault", "0xc0:3", "--status-fault", "0xc0:2")
    succeeded(run_fence(stdin=stdin_for(vbmc, "off")), "Success: Powered OFF\n")
    assert status(vbmc) == 2
    assert power_log(vbmc) == ["power off (was on)"]


def test_other_completion_codes_are_reported(vbmcs):
    vbmc = vbmcs.start("--control-fault", "0xc1:1")
    line = one_error_line(run_fence(stdin=stdin_for(vbmc, "off")), "bmc")
    assert "0xC1 (invalid command)" in line
    assert power_log(vbmc) == [] and status(vbmc) == 0


def test_busy_for_longer_than_the_timeout_fails_in_time(vbmcs):
    vbmc = vbmcs.start("--control-fault", "0xc0:1000")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", fence_timeout="2"))
    assert "0xC0" in one_error_line(result, "bmc")
    assert seconds < 4


def test_unreachable_port_fails_fast(vbmc):
    port = free_udp_port()
    result, seconds = timed(run_fence, ["-o", "status", "-a", "127.0.0.1", "-u", str(port), "-l", "admin",
                                        "-p", PASSWORD])
    assert "refused" in one_error_line(result, "unreachable")
    assert seconds < 3
    result = run_fence(stdin=f"action=monitor\nip=127.0.0.1\nipport={port}\nusername=admin\n")
    one_error_line(result, "unreachable")


def test_wrong_user_and_wrong_password(vbmc):
    one_error_line(run_fence(stdin=stdin_for(vbmc, "status", username="nobody")), "authentication")
    line = one_error_line(run_fence(stdin=stdin_for(vbmc, "off", password="not-the-password")), "authentication")
    assert "wrong password" in line
    assert status(vbmc) == 0  # nothing happened


def test_privilege_above_the_users_limit(vbmcs):
    vbmc = vbmcs.start("--privilege", "operator")
    one_error_line(run_fence(stdin=stdin_for(vbmc, "off")), "privilege")
    assert power_log(vbmc) == []
    succeeded(run_fence(stdin=stdin_for(vbmc, "off", privlvl="operator")), "Success: Powered OFF\n")
    assert power_log(vbmc) == ["power off (was on)"]


def test_user_privilege_can_read_but_not_fence(vbmcs):
    vbmc = vbmcs.start("--privilege", "user")
    assert status(vbmc, privlvl="user") == 0
    line = one_error_line(run_fence(stdin=stdin_for(vbmc, "off", privlvl="user")), "privilege")
    assert "0xD4" in line
    assert power_log(vbmc) == [] and status(vbmc, privlvl="user") == 0


def test_kg(vbmcs):
    vbmc = vbmcs.start(kg=KG_HEX)
    assert status(vbmc, hexadecimal_kg=KG_HEX) == 0
    assert "hexadecimal_kg" in one_error_line(run_fence(stdin=stdin_for(vbmc, "status")), "authentication")
    line = one_error_line(run_fence(stdin=stdin_for(vbmc, "status", hexadecimal_kg="00" * 10)), "authentication")
    assert "Kg" in line and KG_HEX not in line


def test_cipher_suites(vbmcs):
    only3 = vbmcs.start("--suites", "3")
    assert status(only3) == 0  # pyghmi proposes 17, is refused, falls back to 3
    assert status(only3, cipher="3") == 0
    one_error_line(run_fence(stdin=stdin_for(only3, "status", cipher="17")), "authentication")
    both = vbmcs.start()
    assert status(both, cipher="17") == 0
    assert status(both, cipher="3") == 0
    assert "suite 3" in both.log_text() and "suite 17" in both.log_text()
    one_error_line(run_fence(stdin=stdin_for(both, "status", cipher="0")), "configuration")


def test_power_that_never_changes_times_out_within_power_timeout(vbmcs):
    vbmc = vbmcs.start("--stuck")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", power_timeout="1"))
    assert "did not turn off" in one_error_line(result, "timeout")
    assert 0.9 < seconds < 3


def test_fence_timeout_bounds_the_whole_action(vbmcs):
    vbmc = vbmcs.start("--stuck")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", fence_timeout="1.5"))
    one_error_line(result, "timeout")
    assert seconds < 3


def test_slow_power_change_is_polled_not_slept(vbmcs):
    vbmc = vbmcs.start("--power-delay", "0.6")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off"))
    succeeded(result, "Success: Powered OFF\n")
    assert 0.6 < seconds < 2.5  # loaded CI machines lose a UDP packet now and then (pyghmi resends)


def test_delay_and_power_wait(vbmc):
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", delay="1", power_wait="0.5"))
    succeeded(result, "Success: Powered OFF\n")
    assert seconds >= 1.5
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "status", delay="5"))  # delay: fencing actions only
    assert (result.returncode, result.stdout) == (2, "Status: OFF\n") and seconds < 2


def test_reboot_whose_on_fails_is_still_a_success(vbmcs, tmp_path):
    # The contract: reboot succeeds once the off part is verified; a failed on is logged.
    vbmc = vbmcs.start("--on-command", "/bin/false", "--command-timeout", "2")
    result = run_fence(stdin=stdin_for(vbmc, "reboot", power_timeout="1"))
    assert result.returncode == 0, result.stderr
    assert "did not power on again" in result.stderr
    assert status(vbmc) == 2


def test_retry_on(vbmcs, tmp_path):
    marker = tmp_path / "tried-once"
    # The first power-on command fails, the second succeeds.
    script = tmp_path / "flaky-on"
    script.write_text(f"#!/bin/sh\n[ -e {marker} ] && exit 0\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    vbmc = vbmcs.start("--power", "off", "--on-command", str(script))
    assert "did not turn on" in one_error_line(run_fence(stdin=stdin_for(vbmc, "on", power_timeout="1")), "timeout")
    assert status(vbmc) == 2
    marker.unlink()
    result = run_fence(stdin=stdin_for(vbmc, "on", power_timeout="1", retry_on="2"))
    succeeded(result, "Success: Powered ON\n")
    assert "attempt 1: " in result.stderr and status(vbmc) == 0


def test_power_commands_and_status_command(vbmcs, tmp_path):
    state = tmp_path / "node-is-up"
    state.write_text("")
    vbmc = vbmcs.start("--off-command", f"rm -f {state}", "--on-command", f"touch {state}",
                       "--status-command", f"test -e {state}")
    assert status(vbmc) == 0
    succeeded(run_fence(stdin=stdin_for(vbmc, "off")), "Success: Powered OFF\n")
    assert not state.exists() and status(vbmc) == 2
    succeeded(run_fence(stdin=stdin_for(vbmc, "reboot")), "Success: Rebooted\n")
    assert state.exists() and status(vbmc) == 0


def test_list_prints_a_notice_and_succeeds_without_reaching_the_bmc(vbmc):
    """As fence_ipmilan: list and list-status exit 0 with a notice; nothing is sent to the BMC."""
    for result in (run_fence(stdin=stdin_for(vbmc, "list")), run_fence(cli_for(vbmc, "list-status"))):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("NOTICE: fence_ipmi has no list") and "pcmk_host_map" in result.stdout
        assert len(result.stdout.splitlines()) == 1
    assert "established" not in vbmc.log_text()
    upstream = subprocess.run(["fence_ipmilan", "-o", "list", "-a", "127.0.0.1"], capture_output=True, text=True,
                              env=CLEAN_ENV, timeout=60)
    assert (upstream.returncode, upstream.stdout.startswith("NOTICE: ")) == (0, True), upstream
    # An invalid configuration is still reported: list validates first.
    one_error_line(run_fence(stdin=stdin_for(vbmc, "list", ipport="70000")), "configuration")


def test_password_script(vbmc, tmp_path):
    script = tmp_path / "get-password"
    script.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    script.chmod(0o700)
    text = f"action=status\nip=127.0.0.1\nipport={vbmc.port}\nusername=admin\npassword_script={script}\n"
    result = run_fence(stdin=text)
    assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr
    failing = tmp_path / "fails"
    failing.write_text(f"#!/bin/sh\necho '{PASSWORD}'\nexit 3\n")
    failing.chmod(0o700)
    result = run_fence(stdin=text.replace(str(script), str(failing)))
    line = one_error_line(result, "configuration")
    assert "status 3" in line and PASSWORD not in result.stderr


def test_validation_errors(vbmc):
    one_error_line(run_fence(stdin="action=off\nusername=admin\n"), "configuration")  # no ip
    one_error_line(run_fence(stdin=stdin_for(vbmc, "off", ipport="70000")), "configuration")
    one_error_line(run_fence(stdin=stdin_for(vbmc, "off", method="bounce")), "configuration")
    one_error_line(run_fence(stdin=stdin_for(vbmc, "dance")), "configuration")
    for target in ("zz", "0x1ff", "-2", "0"):
        assert "target" in one_error_line(run_fence(stdin=stdin_for(vbmc, "off", target=target)), "configuration")
    one_error_line(run_fence(stdin=stdin_for(vbmc, "validate-all", hexadecimal_kg="xyz")), "configuration")
    one_error_line(run_fence(["-o", "status", "--no-such-option"]), "configuration")
    one_error_line(run_fence(["-o", "status", "stray"]), "configuration")
    assert run_fence(stdin=stdin_for(vbmc, "validate-all")).returncode == 0


def test_target_on_a_bmc_without_bridging(vbmc):
    # hamail-vbmc has no IPMB behind it: Send Message is refused, and that is what the line says.
    line = one_error_line(run_fence(stdin=stdin_for(vbmc, "off", target="0x82")), "bmc")
    assert "target 0x82" in line and "could not bridge" in line
    assert status(vbmc) == 0  # nothing was switched
    assert status(vbmc, target="0x20") == 0  # the BMC's own address: no bridging


IGNORED = {"auth": "md5", "ipmitool_path": "/usr/bin/ipmitool", "ipmitool_timeout": "2", "shell_timeout": "3",
           "plug_separator": ":", "use_sudo": "1", "sudo_path": "/usr/bin/sudo"}


def test_ignored_compatibility_options_are_accepted(vbmc):
    """Accepted; validate-all (what pcs --agent-validation shows) warns about each, other actions say it only
    when verbose, so that a migrated configuration does not log it at every monitor."""
    result = run_fence(stdin=stdin_for(vbmc, "validate-all", **IGNORED))
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    for name in IGNORED:
        assert f"WARNING: {name} is accepted for compatibility and ignored: " in result.stderr, name
    result = run_fence(stdin=stdin_for(vbmc, "status", **IGNORED))
    assert (result.returncode, result.stdout, result.stderr) == (0, "Status: ON\n", "")
    result = run_fence(stdin=stdin_for(vbmc, "status", verbose="1", **IGNORED))
    succeeded(result, "Status: ON\n")
    assert all(f"INFO: {name} is accepted for compatibility and ignored" in result.stderr for name in IGNORED)
    # A boolean set to false asks for nothing: no word about it.
    result = run_fence(stdin=stdin_for(vbmc, "validate-all", use_sudo="0"))
    assert (result.returncode, result.stderr) == (0, "")
    # The legacy spelling sudo=1 of use_sudo, and the command-line forms.
    succeeded(run_fence(stdin=stdin_for(vbmc, "status", sudo="1")), "Status: ON\n")
    result = run_fence(cli_for(vbmc, "status", "--use-sudo", "--sudo-path=/usr/bin/sudo", "--shell-timeout=3",
                               "--plug-separator=:"))
    succeeded(result, "Status: ON\n")


def test_lanplus_0_is_refused_with_its_reason(vbmc):
    """IPMI 1.5 is refused at validate, naming why, instead of being silently replaced by 2.0."""
    for action in ("validate-all", "off"):
        line = one_error_line(run_fence(stdin=stdin_for(vbmc, action, lanplus="0")), "configuration")
        assert "lanplus=0 asks for IPMI 1.5" in line and "set lanplus=1" in line
    assert "established" not in vbmc.log_text() and status(vbmc) == 0
    assert run_fence(stdin=stdin_for(vbmc, "validate-all", lanplus="1")).returncode == 0


def test_every_validation_error_is_reported_at_once(vbmc):
    """One line names every problem: the admin fixes the configuration in one go."""
    result = run_fence(stdin=(f"action=off\nipport=70000\nmethod=bounce\nlanplus=0\ncipher=0\ntarget=zz\n"
                              f"power_timeout=soon\nhexadecimal_kg=xyz\nusername=admin\npassword={PASSWORD}\n"))
    line = one_error_line(result, "configuration")
    for part in ("ip is required", "ipport: 70000", "method: 'bounce'", "lanplus=0", "cipher 0", "target: 'zz'",
                 "power_timeout: 'soon'", "hexadecimal_kg is not hexadecimal"):
        assert part in line, part
    assert PASSWORD not in result.stderr
    # The command line too, and validate-all the same way.
    line = one_error_line(run_fence(["-o", "validate-all", "-u", "0", "--privlvl=root", "-P", "--cipher=9"]),
                          "configuration")
    assert all(part in line for part in ("ip is required", "ipport: 0", "privlvl: 'root'", "cipher '9'")), line


def _bmc_pair(vbmcs):
    """Two vbmcs on the same port of two loopback addresses, as two nodes' BMCs on a management network."""
    for _ in range(5):
        port = free_udp_port()
        try:
            return vbmcs.start(address="127.0.0.2", port=port), vbmcs.start(address="127.0.0.3", port=port)
        except RuntimeError:
            vbmcs.stop_all()  # the port was taken on one of them: try another
            vbmcs.running.clear()
    pytest.fail("no UDP port free on both 127.0.0.2 and 127.0.0.3")


def device_stdin(action: str, ipport: int, **extra: str) -> str:
    """What pacemaker-fenced sends for one stonith device serving every node (port_as_ip, no ip)."""
    lines = [f"action={action}", "port_as_ip=1", f"ipport={ipport}", "username=admin", f"password={PASSWORD}",
             *[f"{key}={value}" for key, value in extra.items()]]
    return "\n".join(lines) + "\n"


def test_port_as_ip_one_device_for_every_node(vbmcs):
    """pcmk_host_map=node1:127.0.0.2;node2:127.0.0.3 with port_as_ip=1 and no ip: the plug Pacemaker passes is
    the BMC to use, and only that BMC's machine is fenced."""
    first, second = _bmc_pair(vbmcs)
    assert run_fence(stdin=device_stdin("validate-all", first.port)).returncode == 0
    monitor = run_fence(stdin=device_stdin("monitor", first.port))
    assert (monitor.returncode, monitor.stdout) == (0, ""), monitor.stderr
    assert "established" not in first.log_text() + second.log_text()  # no BMC to reach until a plug names one
    succeeded(run_fence(stdin=device_stdin("off", first.port, plug="127.0.0.3", nodename="node2")),
              "Success: Powered OFF\n")
    assert (power_log(first), power_log(second)) == ([], ["power off (was on)"])
    result = run_fence(stdin=device_stdin("status", first.port, port="127.0.0.3"))  # the legacy name of plug
    assert (result.returncode, result.stdout) == (2, "Status: OFF\n"), result.stderr
    result = run_fence(stdin=device_stdin("status", first.port, plug="127.0.0.2"))
    assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr
    # As fence-agents: the plug wins over an ip left in the configuration.
    succeeded(run_fence(stdin=device_stdin("on", first.port, plug="127.0.0.3", ip="127.0.0.2")),
              "Success: Powered ON\n")
    assert (power_log(first), power_log(second)) == ([], ["power off (was on)", "power on (was off)"])
    # The command line: -n with --port-as-ip.
    result = run_fence(["-o", "status", "--port-as-ip", "-n", "127.0.0.2", "-u", str(first.port), "-l", "admin",
                        "-p", PASSWORD])
    assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr
    # Without port_as_ip the plug is ignored and ip is required; with it, a fencing action needs a plug.
    assert "ip is required" in one_error_line(
        run_fence(stdin=device_stdin("off", first.port, plug="127.0.0.3", port_as_ip="0")), "configuration")
    assert "pcmk_host_map" in one_error_line(run_fence(stdin=device_stdin("off", first.port)), "configuration")
    assert (power_log(first), power_log(second)) == ([], ["power off (was on)", "power on (was off)"])


def test_monitor_with_port_as_ip_and_ip_checks_that_bmc(vbmc):
    result = run_fence(stdin=device_stdin("monitor", vbmc.port, ip="127.0.0.1"))
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert "established" in vbmc.log_text()
    vbmc.stop()
    one_error_line(run_fence(stdin=device_stdin("monitor", vbmc.port, ip="127.0.0.1")), "unreachable")


def test_verbose_level_on_stdin_and_command_line(vbmc):
    """0 silences verbose (with a warning, as fence-agents), 1 logs each step, 2 also each IPMI request."""
    quiet = run_fence(stdin=stdin_for(vbmc, "status", verbose="1", verbose_level="0"))
    succeeded(quiet, "Status: ON\n")
    assert "logging in" not in quiet.stderr and "verbose is ignored: verbose_level=0" in quiet.stderr
    steps = run_fence(stdin=stdin_for(vbmc, "status", verbose_level="1"))
    assert "logging in" in steps.stderr and "request netfn" not in steps.stderr
    for result in (run_fence(stdin=stdin_for(vbmc, "status", verbose_level="2")),
                   run_fence(cli_for(vbmc, "status", "--verbose-level=2")),
                   run_fence(cli_for(vbmc, "status", "--verbose-level", "2")),
                   run_fence(cli_for(vbmc, "status", "-vv"))):
        succeeded(result, "Status: ON\n")
        assert "request netfn 0x00 cmd 0x01" in result.stderr, result.stderr
    result = run_fence(cli_for(vbmc, "status", "-v"))
    assert "logging in" in result.stderr and "request netfn" not in result.stderr
    result = run_fence(cli_for(vbmc, "status", "-vvv", "--verbose-level=0"))
    assert "logging in" not in result.stderr and "verbose is ignored" in result.stderr
    assert PASSWORD not in "".join(r.stderr for r in (quiet, steps, result))


def test_disable_timeout_leaves_only_fence_timeout(vbmcs):
    vbmc = vbmcs.start("--stuck")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", power_timeout="1", fence_timeout="3",
                                                       disable_timeout="true"))
    one_error_line(result, "timeout")
    assert 2.5 < seconds < 6  # power_timeout=1 no longer ended it; fence_timeout=3 still did
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", power_timeout="1", fence_timeout="3",
                                                       disable_timeout="false"))
    assert "within 1 s" in one_error_line(result, "timeout")
    result = run_fence(cli_for(vbmc, "status", "--disable-timeout=true"))
    assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr


def test_stonith_status_sleep_paces_the_status_polls(vbmcs):
    vbmc = vbmcs.start("--power-delay", "1.2")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", stonith_status_sleep="0.5",
                                                       verbose_level="2"))
    succeeded(result, "Success: Powered OFF\n")
    polls = result.stderr.count("request netfn 0x00 cmd 0x01")
    # One poll before the command, then one per pause of at least 0.5 s (the default backoff polls 8 times).
    assert 2 <= polls <= seconds / 0.5 + 2, (polls, seconds)


def test_help_and_version(vbmc):
    result = run_fence(["--help"])
    assert result.returncode == 0 and "--ip=[ip]" in result.stdout and "--hexadecimal-kg=[key]" in result.stdout
    result = run_fence(["-V"])
    assert result.returncode == 0 and result.stdout.startswith("fence_ipmi ")
    # On stdin they are accepted and ignored: a stray help=1 must not turn fencing into a successful no-op.
    succeeded(run_fence(stdin=stdin_for(vbmc, "off", help="1", version="1")), "Success: Powered OFF\n")
    assert power_log(vbmc) == ["power off (was on)"]


def test_session_is_logged_out(vbmc):
    for action, out in (("status", "Status: ON\n"), ("off", "Success: Powered OFF\n"),
                        ("on", "Success: Powered ON\n"), ("reboot", "Success: Rebooted\n")):
        succeeded(run_fence(stdin=stdin_for(vbmc, action)), out)
    log = vbmc.log_text()
    assert log.count("established") == 4
    assert log.count("closed") == 4


def test_many_agents_in_a_row_do_not_exhaust_sessions(vbmc):
    for _ in range(20):
        assert status(vbmc) == 0


def test_stdout_is_only_the_actions_output(vbmc):
    result = run_fence(stdin=stdin_for(vbmc, "status", verbose="1"))
    succeeded(result, "Status: ON\n")
    assert "logging in" in result.stderr


def _importtime_run(vbmc, action: str, env: dict) -> tuple[subprocess.CompletedProcess, str]:
    """fence_ipmi under python3 -X importtime (the shebang's interpreter and -S): the result and the modules
    it imported."""
    environ = dict(CLEAN_ENV, **env)
    result = subprocess.run(["/usr/bin/python3", "-S", "-X", "importtime", str(FENCE_IPMI)],
                            input=stdin_for(vbmc, action), capture_output=True, text=True, env=environ, timeout=60)
    modules = "\n".join(line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                        if line.startswith("import time:"))
    return result, modules


def test_pyghmi_is_used_as_it_is(vbmc):
    """pyghmi's session module does RMCP+ (AES-CBC through cryptography, its OpenSSL backend loaded as pyghmi
    asks): no module of ours stands in for any of it. Every action fences the same BMC."""
    for action, rc, out in (("status", 0, "Status: ON"), ("off", 0, "Success: Powered OFF"),
                            ("status", 2, "Status: OFF"), ("reboot", 0, "Success: Rebooted"),
                            ("status", 0, "Status: ON")):
        result, modules = _importtime_run(vbmc, action, {})
        assert (result.returncode, result.stdout.strip()) == (rc, out), (action, result.stderr[-500:])
        loaded = modules.splitlines()
        assert "pyghmi.ipmi.private.session" in loaded and "cryptography.hazmat.backends.openssl.backend" in loaded
        assert "hamail.agents.fence_ipmi.pyghmi_session" in loaded
        assert not [name for name in loaded if name.startswith("hamail") and name.endswith(".aes")]


def test_with_another_pyghmi(vbmcs, other_pyghmi):
    """The same agent with PyPI's pyghmi first on the path: every pyghmi module it loads comes from there."""
    env = {"PYTHONPATH": other_pyghmi}
    only3 = vbmcs.start("--suites", "3")
    for vbmc in (vbmcs.start(), only3):
        result, sources = pyghmi_sources(stdin_for(vbmc, "status"), env)
        assert (result.returncode, result.stdout) == (0, "Status: ON\n"), result.stderr[-2000:]
        assert sources == {other_pyghmi}
        succeeded(run_fence(stdin=stdin_for(vbmc, "reboot"), env=env), "Success: Rebooted\n")
        succeeded(run_fence(stdin=stdin_for(vbmc, "reboot", method="cycle"), env=env), "Success: Rebooted\n")
        succeeded(run_fence(stdin=stdin_for(vbmc, "off"), env=env), "Success: Powered OFF\n")
        result = run_fence(stdin=stdin_for(vbmc, "status"), env=env)
        assert (result.returncode, result.stdout) == (2, "Status: OFF\n"), result.stderr
        assert power_log(vbmc) == ["power off (was on)", "power on (was off)", "power cycle (was on)",
                                   "power off (was on)"]
        one_error_line(run_fence(stdin=stdin_for(vbmc, "status", password="wrong"), env=env), "authentication")
    assert "suite 3" in only3.log_text() and "suite 17" not in only3.log_text()


def test_bmc_that_stops_answering_mid_session_is_bounded(vbmcs):
    vbmc = vbmcs.start("--status-fault", "drop:1000")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "status", fence_timeout="2"))
    one_error_line(result, "timeout")
    assert seconds < 4  # pyghmi alone would retry for about 18 s
    vbmc = vbmcs.start("--control-fault", "drop:1000")
    result, seconds = timed(run_fence, stdin=stdin_for(vbmc, "off", fence_timeout="2"))
    one_error_line(result, "timeout")
    assert seconds < 4


def test_diag_sends_a_diagnostic_interrupt_to_a_running_machine_only(vbmc):
    """diag: the BMC gets the interrupt (chassis control 4) and the power state does not change; an off machine
    gets nothing, as with fence_ipmilan."""
    succeeded(run_fence(stdin=stdin_for(vbmc, "diag")), "Success: Diagnostic interrupt sent\n")
    assert "power diag: diagnostic interrupt delivered" in vbmc.log_text() and status(vbmc) == 0
    succeeded(run_fence(stdin=stdin_for(vbmc, "off")), "Success: Powered OFF\n")
    before = vbmc.log_text().count("power diag")
    succeeded(run_fence(stdin=stdin_for(vbmc, "diag")), "Success: Already OFF\n")
    assert vbmc.log_text().count("power diag") == before and status(vbmc) == 2
