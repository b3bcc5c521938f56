"""The OCF dispatch contract, in process: codes, exit reasons, stop/probe/notify rules, no tracebacks."""

import io

import pytest

from hamail.system.clock import FakeClock
from hamail.ocf import OCFExit
from hamail.ocf.metadata import ActionSpec, AgentSpec
from hamail.ocf import Agent, ConfigError, NotInstalled, OCFError, run
from hamail.params import Kind, Param, ParamTable
from hamail.system.runner import FakeRunner

PARAMS = ParamTable(
    Param("binary", Kind.PATH, "binary", default="/bin/true"),
    Param("count", Kind.INTEGER, "count", default="1", minimum=0),
    Param("password", Kind.STRING, "password", private=True),
)
SPEC = AgentSpec("Test", "1.0", "test agent", "A test agent.", PARAMS,
                 (ActionSpec("start", 20), ActionSpec("stop", 20), ActionSpec("monitor", 20, interval=10),
                  ActionSpec("notify", 5)))


def make(handlers=None, validate=None):
    calls = []

    def record(name, result=OCFExit.SUCCESS):
        def handler(ctx):
            calls.append((name, ctx))
            if isinstance(result, Exception):
                raise result
            return result
        return handler
    actions = {n: record(n) for n in ("start", "stop", "monitor", "notify")}
    actions.update(handlers or {})
    return Agent(SPEC, actions, validate), calls


def call(agent, action, env=None):
    out, err = io.StringIO(), io.StringIO()
    rc = run(agent, ["Test", action], env or {}, stdout=out, stderr=err, runner=FakeRunner(), clock=FakeClock())
    return rc, out.getvalue(), err.getvalue()


def test_success_and_context():
    agent, calls = make()
    rc, out, err = call(agent, "start", {"OCF_RESKEY_count": "3", "OCF_RESOURCE_INSTANCE": "t:1",
                                         "OCF_RESKEY_CRM_meta_timeout": "10000"})
    assert rc == 0 and out == "" and err == ""
    ctx = calls[0][1]
    assert ctx.config.count == 3 and ctx.env.instance == "t:1" and ctx.env.clone_base == "t"
    assert ctx.deadline.remaining() == pytest.approx(9.0)


def test_unknown_action_is_unimplemented_with_usage():
    agent, _ = make()
    rc, _, err = call(agent, "migrate_to")
    assert rc == OCFExit.ERR_UNIMPLEMENTED and "usage:" in err and "ocf-exit-reason:" in err


def test_missing_action_is_err_args():
    agent, _ = make()
    out, err = io.StringIO(), io.StringIO()
    assert run(agent, ["Test"], {}, stdout=out, stderr=err) == OCFExit.ERR_ARGS
    assert "usage:" in err.getvalue()


def test_meta_data_and_usage_need_no_valid_config():
    agent, _ = make()
    rc, out, _ = call(agent, "meta-data", {"OCF_RESKEY_count": "bad"})
    assert rc == 0 and out.startswith('<?xml version="1.0"?>')
    rc, out, _ = call(agent, "usage")
    assert rc == 0 and "count" in out


def test_invalid_parameter_is_err_configured_with_one_reason_line():
    agent, calls = make()
    rc, _, err = call(agent, "start", {"OCF_RESKEY_count": "-4"})
    assert rc == OCFExit.ERR_CONFIGURED and not calls
    reasons = [line for line in err.splitlines() if line.startswith("ocf-exit-reason:")]
    assert reasons == ["ocf-exit-reason:parameter count: -4 is out of range 0.."]
    assert "Traceback" not in err


def test_validate_all_runs_the_validator():
    agent, _ = make(validate=lambda ctx: (_ for _ in ()).throw(NotInstalled("mysqld not found")))
    rc, _, err = call(agent, "validate-all")
    assert rc == OCFExit.ERR_INSTALLED and "ocf-exit-reason:mysqld not found" in err
    agent, _ = make()
    assert call(agent, "validate-all")[0] == 0


def test_stop_succeeds_with_broken_config_when_nothing_can_run():
    def stop(ctx):
        raise ConfigError("cannot identify the instance")
    agent, _ = make({"stop": stop})
    rc, _, err = call(agent, "stop", {"OCF_RESKEY_count": "x"})
    assert rc == 0 and "ocf-exit-reason" not in err


def test_stop_still_runs_with_broken_config():
    agent, calls = make()
    assert call(agent, "stop", {"OCF_RESKEY_count": "x"})[0] == 0
    assert calls and calls[0][1].config.count == 1  # invalid value replaced by its default


def test_stop_failure_for_real_reasons_is_reported():
    agent, _ = make({"stop": lambda ctx: (_ for _ in ()).throw(OCFError(OCFExit.ERR_GENERIC, "pid 5 survived KILL"))})
    rc, _, err = call(agent, "stop")
    assert rc == 1 and "pid 5 survived KILL" in err


def test_probe_of_absent_software_is_not_running_but_recurring_monitor_is_not():
    def missing(ctx):
        raise NotInstalled("postfix is not installed")
    agent, _ = make(validate=missing)
    assert call(agent, "monitor", {"OCF_RESKEY_CRM_meta_interval": "0"})[0] == OCFExit.NOT_RUNNING
    assert call(agent, "monitor", {"OCF_RESKEY_CRM_meta_interval": "10000"})[0] == OCFExit.ERR_INSTALLED


def test_notify_always_succeeds():
    agent, _ = make({"notify": lambda ctx: 1 / 0})
    rc, _, err = call(agent, "notify")
    assert rc == 0 and "ZeroDivisionError" in err and "Traceback" not in err


def test_unexpected_exception_is_one_line_generic_error_without_secrets():
    def start(ctx):
        raise RuntimeError(f"login failed for password {ctx.config.password.reveal()}\nsecond line")
    agent, _ = make({"start": start})
    rc, _, err = call(agent, "start", {"OCF_RESKEY_password": "hunter2"})
    assert rc == OCFExit.ERR_GENERIC
    assert "hunter2" not in err and "Traceback" not in err
    reason = [line for line in err.splitlines() if line.startswith("ocf-exit-reason:")]
    assert reason == ["ocf-exit-reason:internal error in start: RuntimeError: login failed for password *** second line"]


def test_debug_log_gets_the_traceback(tmp_path):
    debug = tmp_path / "debug.log"
    agent, _ = make({"start": lambda ctx: 1 / 0})
    rc, _, err = call(agent, "start", {"HA_DEBUGLOG": str(debug)})
    assert rc == 1 and "Traceback" in debug.read_text() and "Traceback" not in err


def test_exit_reason_prefix_is_honoured():
    agent, _ = make({"start": lambda ctx: (_ for _ in ()).throw(OCFError(OCFExit.ERR_PERM, "no"))})
    rc, _, err = call(agent, "start", {"OCF_EXIT_REASON_PREFIX": "REASON>"})
    assert rc == OCFExit.ERR_PERM and "REASON>no" in err


def test_check_level_and_probe_flags():
    agent, calls = make()
    call(agent, "monitor", {"OCF_CHECK_LEVEL": "20", "OCF_RESKEY_CRM_meta_interval": "10000"})
    call(agent, "monitor", {"OCF_CHECK_LEVEL": "junk"})
    assert calls[0][1].env.check_level == 20 and not calls[0][1].env.is_probe
    assert calls[1][1].env.check_level == 0 and calls[1][1].env.is_probe


def test_children_never_inherit_private_parameters():
    seen = {}

    def start(ctx):
        seen.update(ctx.runner.environment())
        return OCFExit.SUCCESS
    agent, _ = make({"start": start})
    out, err = io.StringIO(), io.StringIO()
    rc = run(agent, ["Test", "start"], {"OCF_RESKEY_password": "hunter2", "OCF_RESKEY_count": "2", "PATH": "/bin"},
             stdout=out, stderr=err, clock=FakeClock())
    assert rc == 0 and seen["OCF_RESKEY_count"] == "2" and "OCF_RESKEY_password" not in seen
    assert "hunter2" not in "".join(seen.values())
    # also when the caller hands in its own runner (tests recording invocations)
    from hamail.system.runner import RecordingRunner
    recording = RecordingRunner({"OCF_RESKEY_password": "hunter2", "PATH": "/bin"})
    run(agent, ["Test", "start"], {"OCF_RESKEY_password": "hunter2"}, stdout=out, stderr=err, runner=recording)
    assert "OCF_RESKEY_password" not in recording.environment()


def test_a_tool_missing_on_this_node_is_not_running_for_a_probe_and_not_installed_otherwise():
    def monitor(ctx):
        ctx.run(["/nonexistent/postconf"])
        return OCFExit.SUCCESS
    agent, _ = make({"monitor": monitor})
    out, err = io.StringIO(), io.StringIO()
    from hamail.system.runner import CommandRunner
    probe = run(agent, ["Test", "monitor"], {"OCF_RESKEY_CRM_meta_interval": "0"}, stdout=out, stderr=err,
                runner=CommandRunner({"PATH": "/bin"}), clock=FakeClock())
    recurring = run(agent, ["Test", "monitor"], {"OCF_RESKEY_CRM_meta_interval": "10000"}, stdout=out,
                    stderr=err, runner=CommandRunner({"PATH": "/bin"}), clock=FakeClock())
    assert (probe, recurring) == (OCFExit.NOT_RUNNING, OCFExit.ERR_INSTALLED)
    assert "ocf-exit-reason:/nonexistent/postconf: not found" in err.getvalue()


def test_software_found_missing_inside_an_action_counts_like_missing_in_validation():
    # Before the one _missing() decision, NotInstalled raised by an action (not by validate) failed a probe
    # with ERR_INSTALLED, which makes Pacemaker stop the resource everywhere.
    def monitor(ctx):
        raise NotInstalled("mariadbd is not installed on this node")
    agent, _ = make({"monitor": monitor})
    out, err = io.StringIO(), io.StringIO()
    probe = run(agent, ["Test", "monitor"], {"OCF_RESKEY_CRM_meta_interval": "0"}, stdout=out, stderr=err,
                runner=FakeRunner(), clock=FakeClock())
    start = run(agent, ["Test", "monitor"], {"OCF_RESKEY_CRM_meta_interval": "10000"}, stdout=out, stderr=err,
                runner=FakeRunner(), clock=FakeClock())
    assert (probe, start) == (OCFExit.NOT_RUNNING, OCFExit.ERR_INSTALLED)
    assert err.getvalue().count("ocf-exit-reason:mariadbd is not installed on this node") == 1


def test_a_pacemaker_tool_failure_is_a_generic_failure_with_its_reason():
    from hamail.pacemaker import PacemakerError

    def start(ctx):
        raise PacemakerError("cannot set galera-uuid on node1: connection to attrd refused")
    agent, _ = make({"start": start})
    out, err = io.StringIO(), io.StringIO()
    rc = run(agent, ["Test", "start"], {}, stdout=out, stderr=err, runner=FakeRunner(), clock=FakeClock())
    assert rc == OCFExit.ERR_GENERIC
    assert "ocf-exit-reason:start: cannot set galera-uuid on node1: connection to attrd refused" in err.getvalue()
    assert "internal error" not in err.getvalue()
