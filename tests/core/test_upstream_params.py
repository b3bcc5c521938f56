# SPDX-License-Identifier: GPL-2.0-or-later
"""README: "Agents accept the parameters of the upstream agent doing the same job, so switching is a provider
change". For every OCF agent with an upstream twin installed here (resource-agents' heartbeat agents,
pacemaker's Stateful): each upstream parameter name is in our metadata (pcs refuses a parameter the metadata
does not list), and our validate-all accepts each upstream default as the value of that parameter.
"""

from __future__ import annotations

import subprocess

import pytest
from lxml import etree

from testlib import AGENTS, NODE_PYTHON, UPSTREAM, run_agent

# Upstream parameters ours deliberately does not offer, each with the reason. Keep it empty unless a parameter
# truly cannot apply to our implementation.
NOT_APPLICABLE: dict[str, dict[str, str]] = {}
NODE = "hamail-upstream"


def upstream_params(name: str) -> dict[str, str | None]:
    """The upstream agent's parameters from its own meta-data: name -> default (None when it declares none)."""
    result = subprocess.run([UPSTREAM[name], "meta-data"], capture_output=True, timeout=60,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf"})
    assert result.returncode == 0, result.stderr
    params = {}
    for param in etree.fromstring(result.stdout).iterfind("parameters/parameter"):
        content = param.find("content")
        params[param.get("name")] = content.get("default") if content is not None else None
    assert params, f"{UPSTREAM[name]} meta-data lists no parameters"
    return params


def our_params(name: str) -> list[str]:
    """Our agent's parameter names from its meta-data."""
    result = run_agent(name, "meta-data")
    assert result.returncode == 0, result.stderr
    return [p.get("name") for p in etree.fromstring(result.stdout.encode()).iterfind("parameters/parameter")]


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_every_upstream_parameter_is_in_our_metadata(name):
    ours = set(our_params(name))
    skipped = NOT_APPLICABLE.get(name, {})
    missing = [p for p in upstream_params(name) if p not in ours and p not in skipped]
    assert missing == [], f"ocf:hamail:{name} lacks {UPSTREAM[name]}'s parameters {missing}"
    assert not set(skipped) & ours, "an allowlisted parameter is offered after all: drop it from NOT_APPLICABLE"


def _valid_base(name: str, tmp) -> tuple[dict, tuple[str, ...]]:
    """Parameters with which our validate-all succeeds here, and a namespace prefix to run it in."""
    if name == "IPaddr2":
        # A private network namespace with an interface in the address's subnet: nothing of the host's.
        setup = ("ip link add up0 type veth peer name up1; ip link set up1 up; ip link set up0 up; "
                 "ip addr add 192.0.2.1/24 dev up0")
        return {"ip": "192.0.2.77", "cidr_netmask": "24", "nic": "up0"}, \
            ("unshare", "-n", "sh", "-ec", setup + '\nexec "$@"', "sh")
    if name == "Filesystem":
        (tmp / "mnt").mkdir()
        return {"device": "upstreamfs", "directory": str(tmp / "mnt"), "fstype": "tmpfs"}, ()
    if name == "galera":
        (tmp / "datadir").mkdir()
        return {"wsrep_cluster_address": f"gcomm://{NODE}", "datadir": str(tmp / "datadir")}, ()
    if name == "mysql":
        (tmp / "datadir").mkdir()
        (tmp / "my.cnf").write_text("[mysqld]\nskip-networking\n")
        return {"config": str(tmp / "my.cnf"), "datadir": str(tmp / "datadir")}, ()
    if name == "garbd":
        return {"wsrep_cluster_address": "gcomm://node1:4567,node2:4567", "wsrep_cluster_name": "mail"}, ()
    if name == "apache":
        # a configuration of its own that apache2 -t (run by validate-all) accepts, not the host's
        (tmp / "httpd.conf").write_text(f"ServerRoot {tmp}\nServerName localhost\nListen 127.0.0.1:8\n"
                                        f"PidFile {tmp}/httpd.pid\nErrorLog {tmp}/error.log\n"
                                        "LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n")
        return {"configfile": str(tmp / "httpd.conf")}, ()
    if name == "nginx":
        (tmp / "nginx.conf").write_text(f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n")
        return {"configfile": str(tmp / "nginx.conf")}, ()
    if name == "slapd":
        # a slapd.conf that slaptest (run by validate-all) accepts, its pid file and database under tmp
        (tmp / "db").mkdir()
        (tmp / "slapd.conf").write_text(f"include /etc/ldap/schema/core.schema\npidfile {tmp}/slapd.pid\n"
                                        "modulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\n"
                                        f'suffix "dc=example,dc=test"\ndirectory {tmp}/db\n')
        return {"config": str(tmp / "slapd.conf")}, ()
    if name == "drbd":
        return {"drbd_resource": "r0"}, ()  # drbd-utils' /etc/drbd.conf; this kernel has no DRBD module
    return {}, ()


def validate_all(name: str, params: dict, prefix: tuple[str, ...], tmp) -> subprocess.CompletedProcess:
    """Our agent's validate-all with these parameters, as pacemaker-execd runs it (inside prefix, if any)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": f"up-{name}",
           "OCF_RESOURCE_TYPE": name, "OCF_RESOURCE_PROVIDER": "hamail", "OCF_RA_VERSION_MAJOR": "1",
           "OCF_RA_VERSION_MINOR": "1", "OCF_RESKEY_CRM_meta_on_node": NODE, "OCF_RESKEY_CRM_meta_timeout": "20000",
           "HA_RSCTMP": str(tmp)}
    env.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
    return subprocess.run([*prefix, NODE_PYTHON, str(AGENTS / name), "validate-all"], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_upstream_defaults_pass_our_validation(name, tmp_path):
    """Each upstream default, given explicitly as the value of its parameter, is accepted by validate-all.

    An empty default is no value (Pacemaker passes nothing for an unset parameter), so it is not tried."""
    base, prefix = _valid_base(name, tmp_path)
    result = validate_all(name, base, prefix, tmp_path)
    assert result.returncode == 0, f"the base configuration {base} must validate: {result.stderr}"
    defaults = {p: d for p, d in upstream_params(name).items() if d and p not in NOT_APPLICABLE.get(name, {})}
    refused = {}
    for param, default in defaults.items():
        result = validate_all(name, {**base, param: default}, prefix, tmp_path)
        if result.returncode != 0:
            refused[f"{param}={default}"] = (result.returncode, result.stderr.strip()[-300:])
    assert defaults, f"{UPSTREAM[name]} declares no non-empty default: nothing was tried"
    assert refused == {}, f"ocf:hamail:{name} refuses upstream defaults: {refused}"
