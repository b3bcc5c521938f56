# SPDX-License-Identifier: GPL-2.0-or-later
"""The OCF dispatch contract, in process: codes, exit reasons, stop/probe/notify rules, no tracebacks."""

import io
import re

import pytest
from lxml import etree

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
    agent, calls = make()
    rc, out, _ = call(agent, "meta-data", {"OCF_RESKEY_count": "bad"})
    assert rc == 0 and out.startswith('<?xml version="1.0"?>')
    root = etree.fromstring(out.encode())
    assert root.tag == "resource-agent" and root.get("name") == "Test"
    # the agent's parameters, then the tracing parameters the core adds to every agent
    published = ["binary", "count", "password", "trace_ra", "trace_file"]
    assert [p.get("name") for p in root.iter("parameter")] == published
    assert [a.get("name") for a in root.iter("action")] == ["start", "stop", "monitor", "notify"]
    rc, out, _ = call(agent, "usage", {"OCF_RESKEY_count": "bad"})
    assert rc == 0 and out.startswith("usage: Test {meta-data|monitor|notify|start|stop|usage|validate-all}\n")
    assert re.findall(r"^  (\S+) \(", out, re.M) == published  # one entry a parameter
    assert calls == []  # neither ran an action


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
    assert call(agent, "monitor", {"OCF_CHECK_LEVEL": "20", "OCF_RESKEY_CRM_meta_interval": "10000"})[0] == 0
    assert call(agent, "monitor", {"OCF_CHECK_LEVEL": "junk"})[0] == 0
    assert calls[0][1].env.check_level == 20 and not calls[0][1].env.is_probe
    assert calls[1][1].env.check_level == 0 and calls[1][1].env.is_probe


def test_children_never_inherit_private_parameters():
    seen = []

    def start(ctx):
        seen.append(ctx.run(["env"]).stdout)  # what a real child gets
        return OCFExit.SUCCESS
    agent, _ = make({"start": start})
    out, err = io.StringIO(), io.StringIO()
    rc = run(agent, ["Test", "start"], {"OCF_RESKEY_password": "hunter2", "OCF_RESKEY_count": "2", "PATH": "/bin"},
             stdout=out, stderr=err, clock=FakeClock())
    assert rc == 0, err.getvalue()
    child = dict(line.split("=", 1) for line in seen[0].splitlines())
    assert child["OCF_RESKEY_count"] == "2" and "OCF_RESKEY_password" not in child
    assert "hunter2" not in seen[0]
    # also when the caller hands in its own runner (tests recording invocations)
    from hamail.system.runner import RecordingRunner
    recording = RecordingRunner({"OCF_RESKEY_password": "hunter2", "PATH": "/bin"})
    rc = run(agent, ["Test", "start"], {"OCF_RESKEY_password": "hunter2"}, stdout=out, stderr=err, runner=recording,
             clock=FakeClock())
    assert rc == 0, err.getvalue()
    assert "hunter2" not in seen[1] and "OCF_RESKEY_password" not in recording.invocations[0].env


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


# RA tracing (trace_ra, trace_file), as ocf-shellfuncs agents do it: the whole debug trace of one action in a
# file of mode 0600, secrets blanked.

TRACE_NAME = re.compile(r"^t1\.start\.\d{4}-\d\d-\d\d\.\d\d:\d\d:\d\d$")  # <id>.<action>.<date +%F.%T>


def traced_start(ctx):
    """A start that logs at debug level, runs real commands (one fed the secret, one failing) and fails."""
    ctx.log.debug("debug detail %s", "xyz")
    ctx.log.debug("connecting with %s", ctx.config.password.reveal())
    ctx.run(["cat"], stdin=ctx.config.password)  # its output is the secret
    ctx.run(["sh", "-c", "echo on-stderr >&2; exit 3"])
    raise OCFError(OCFExit.ERR_GENERIC, f"gave up, password {ctx.config.password.reveal()} refused")


def run_traced(tmp_path, env, handler=traced_start):
    """start of the Test agent with real commands, in a trace-ready environment plus env: (rc, stderr).

    HA_VARLIB is below tmp_path unless env sets it: a trace that goes astray never lands in the host's
    /var/lib/heartbeat."""
    from hamail.system.runner import CommandRunner
    agent, _ = make({"start": handler})
    base = {"PATH": "/usr/bin:/bin", "OCF_RESOURCE_INSTANCE": "t1", "OCF_RESOURCE_TYPE": "Test",
            "OCF_RESKEY_password": "hunter2", "HA_VARLIB": str(tmp_path / "varlib")}
    base.update(env)
    out, err = io.StringIO(), io.StringIO()
    rc = run(agent, ["Test", "start"], base, stdout=out, stderr=err, runner=CommandRunner(base), clock=FakeClock())
    return rc, err.getvalue()


def files_under(path):
    """Every file below path, sorted ([] when path does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_trace_ra_writes_the_whole_debug_trace_without_secrets(tmp_path):
    rc, err = run_traced(tmp_path, {"OCF_RESKEY_trace_ra": "1", "OCF_RESKEY_trace_dir": str(tmp_path / "trace"),
                          "OCF_RESKEY_CRM_meta_description": "its password is hunter2"})  # the secret elsewhere
    assert rc == OCFExit.ERR_GENERIC and "ocf-exit-reason:gave up, password *** refused" in err
    [trace] = files_under(tmp_path / "trace")
    assert trace.parent == tmp_path / "trace" / "Test" and TRACE_NAME.match(trace.name), trace
    assert trace.stat().st_mode & 0o777 == 0o600
    text = trace.read_text()
    for expected in ("trace of ocf:hamail:Test start for t1", "  OCF_RESKEY_password=***\n",
                     "DEBUG: debug detail xyz\n", "DEBUG: connecting with ***\n",
                     "DEBUG: + cat  [a secret on stdin]\n", "DEBUG:   exit status 0\n", "DEBUG:   stdout| ***\n",
                     "DEBUG: + sh -c 'echo on-stderr >&2; exit 3'\n", "DEBUG:   exit status 3\n",
                     "DEBUG:   stderr| on-stderr\n", "ERROR: start: gave up, password *** refused\n",
                     " exit reason: gave up, password *** refused\n", " exit code 1 (ERR_GENERIC)\n",
                     "  OCF_RESKEY_CRM_meta_description=its password is ***\n"):
        assert expected in text, (expected, text)
    assert "hunter2" not in text
    assert "debug detail" not in err  # the trace adds no debug output to the normal log


def test_trace_blanks_private_values_the_scrubber_does_not_know(tmp_path):
    """A private integer is no Secret (nothing scrubs its text): the trace still shows only its name."""
    spec = AgentSpec("Pin", "1.0", "pin", "An agent with a private number.",
                     ParamTable(Param("pin", Kind.INTEGER, "PIN", private=True)), (ActionSpec("start", 20),))
    agent = Agent(spec, {"start": lambda ctx: OCFExit.SUCCESS})
    env = {"OCF_RESKEY_pin": "97531", "OCF_RESKEY_trace_ra": "1", "OCF_RESKEY_trace_dir": str(tmp_path),
           "HA_VARLIB": str(tmp_path / "varlib")}
    assert run(agent, ["Pin", "start"], env, stdout=io.StringIO(), stderr=io.StringIO(), runner=FakeRunner(),
               clock=FakeClock()) == 0
    [trace] = files_under(tmp_path)
    text = trace.read_text()
    assert "  OCF_RESKEY_pin=***\n" in text and "97531" not in text


@pytest.mark.parametrize("env", [{"OCF_RESKEY_trace_ra": "true"}, {"OCF_TRACE_RA": "yes"},
                                 {"OCF_TRACE_RA": "1", "OCF_RESKEY_trace_ra": "0"}])
def test_tracing_is_turned_on_as_ocf_shellfuncs_does(env, tmp_path):
    run_traced(tmp_path, {**env, "OCF_RESKEY_trace_dir": str(tmp_path)})
    assert [p.parent.name for p in files_under(tmp_path)] == ["Test"]


@pytest.mark.parametrize("env", [{}, {"OCF_RESKEY_trace_ra": "0"}, {"OCF_RESKEY_trace_ra": "no"},
                                 {"OCF_TRACE_RA": "0", "OCF_RESKEY_trace_ra": "1"}])
def test_no_trace_unless_asked(env, tmp_path):
    rc, _ = run_traced(tmp_path, {**env, "OCF_RESKEY_trace_dir": str(tmp_path / "trace"),
                                  "OCF_RESKEY_trace_file": str(tmp_path / "file")})
    assert rc == OCFExit.ERR_GENERIC and files_under(tmp_path) == []


def test_default_directory_is_ha_varlib_trace_ra(tmp_path):
    run_traced(tmp_path, {"OCF_RESKEY_trace_ra": "1", "HA_VARLIB": str(tmp_path)})
    [trace] = files_under(tmp_path)
    assert trace.parent == tmp_path / "trace_ra" / "Test" and TRACE_NAME.match(trace.name)


def test_trace_file_collects_every_run(tmp_path):
    path = tmp_path / "custom.trace"
    for _ in range(2):
        run_traced(tmp_path, {"OCF_RESKEY_trace_ra": "1", "OCF_RESKEY_trace_file": str(path),
                              "HA_VARLIB": str(tmp_path)})
    assert files_under(tmp_path) == [path] and path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert text.count("trace of ocf:hamail:Test start for t1") == 2 and text.count("exit code 1") == 2
    assert "hunter2" not in text


def test_a_relative_trace_file_falls_back_to_the_default_with_a_warning(tmp_path):
    rc, err = run_traced(tmp_path, {"OCF_RESKEY_trace_ra": "1", "OCF_RESKEY_trace_file": "relative.trace",
                                    "HA_VARLIB": str(tmp_path)})
    assert "trace_file must be a descriptor (3-9) or an absolute path, not 'relative.trace'" in err
    [trace] = files_under(tmp_path)
    assert trace.parent == tmp_path / "trace_ra" / "Test"


def test_an_unwritable_trace_never_changes_the_result(tmp_path):
    (tmp_path / "plain-file").write_text("")
    rc, err = run_traced(tmp_path, {"OCF_RESKEY_trace_ra": "1",
                                    "OCF_RESKEY_trace_file": str(tmp_path / "plain-file" / "x")},
                         handler=lambda ctx: OCFExit.SUCCESS)
    assert rc == 0 and "trace not going to happen" in err
    assert "ocf-exit-reason" not in err and (tmp_path / "plain-file").read_text() == ""


def test_trace_to_a_descriptor_the_caller_opened(tmp_path, checkout):
    """OCF_TRACE_FILE=9: the trace goes to descriptor 9 of the agent (here the real Dummy, run by a shell)."""
    import subprocess
    state, out = tmp_path / "state", tmp_path / "fd9.trace"
    env = {"PATH": "/usr/bin:/bin", "OCF_RESOURCE_INSTANCE": "d9", "OCF_RESOURCE_TYPE": "Dummy", "OCF_TRACE_RA": "1",
           "OCF_TRACE_FILE": "9", "OCF_RESKEY_state": str(state), "HA_VARLIB": str(tmp_path / "varlib")}
    result = subprocess.run(["sh", "-c", 'exec 9>"$0"; exec /usr/bin/python3 "$1" start', str(out),
                             str(checkout / "agents" / "Dummy")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert state.read_text().strip() == "running"
    text = out.read_text()
    assert "trace of ocf:hamail:Dummy start for d9" in text and " exit code 0 (SUCCESS)\n" in text
    assert not (tmp_path / "varlib").exists()
