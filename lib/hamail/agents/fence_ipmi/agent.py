# SPDX-License-Identifier: GPL-2.0-or-later
"""fence_ipmi: STONITH through a BMC with IPMI 2.0 (RMCP+), as fence_ipmilan documents it: its options and
aliases, the rules they must follow, and the agent.

The device (login, power state and control, completion codes) is hamail.agents.fence_ipmi.device, and pyghmi
is reached only through hamail.agents.fence_ipmi.pyghmi_session: metadata, help and validate-all never
import it.
"""

from __future__ import annotations

from hamail.agents.fence_ipmi.device import PRIVILEGES, IpmiConnection, kg_key, target_address
from hamail.fence.agent import FenceAgent
from hamail.fence.options import COMMON_OPTIONS, METHOD_OPTION, FenceOptions, fence_option, with_port_as_ip
from hamail.params import Kind

__all__ = ["IPMI_OPTIONS", "LONGDESC", "check", "AGENT"]

IPMI_OPTIONS = (
    fence_option("ip", Kind.STRING, "IP address or hostname of the BMC (required unless port_as_ip is set)",
                 short="a", placeholder="ip", aliases=("ipaddr",)),
    fence_option("ipport", Kind.PORT, "UDP port of the BMC", short="u", placeholder="port", default="623"),
    fence_option("username", Kind.STRING, "Login name", short="l", placeholder="name", aliases=("login",)),
    fence_option("password", Kind.STRING, "Login password or passphrase", short="p", placeholder="password",
                 aliases=("passwd",), private=True),
    fence_option("password_script", Kind.STRING, "Command to run to retrieve the password (run without a shell)",
                 short="S", placeholder="script", aliases=("passwd_script",)),
    fence_option("lanplus", Kind.BOOLEAN,
                 "Use Lanplus (IPMI 2.0, RMCP+). Default 1 (fence_ipmilan: 0): lanplus=0 asks for IPMI 1.5, which "
                 "sends the password in clear or as MD5 and does not encrypt, and is refused", short="P",
                 default="1"),
    fence_option("auth", Kind.SELECT, "IPMI 1.5 authentication type", short="A", placeholder="auth",
                 choices=("md5", "password", "none"), ignored="RMCP+ authenticates with RAKP"),
    fence_option("cipher", Kind.STRING, "Cipher suite: 17 or 3 (default: 17, falling back to 3)", short="C",
                 placeholder="cipher",
                 longdesc="Suite 0 (no authentication) is refused; pyghmi implements only suites 3 and 17."),
    fence_option("privlvl", Kind.SELECT, "Privilege level on the BMC", short="L", placeholder="level",
                 choices=tuple(PRIVILEGES), default="administrator"),
    fence_option("hexadecimal_kg", Kind.STRING, "Hexadecimal-encoded Kg key for IPMI 2.0 authentication",
                 placeholder="key", private=True),
    fence_option("target", Kind.STRING, "Bridge IPMI requests to the remote target address",
                 placeholder="targetaddress",
                 longdesc="The IPMB slave address (e.g. 0x82) of the controller behind the BMC that controls this "
                          "machine's power, as ipmitool -t: requests go through Send Message on channel 0 (primary "
                          "IPMB). Empty: the BMC itself."),
    METHOD_OPTION,
    fence_option("ipmitool_path", Kind.STRING, "Path to ipmitool", placeholder="path",
                 ignored="fence_ipmi speaks IPMI itself through pyghmi"),
    fence_option("ipmitool_timeout", Kind.STRING, "Timeout (sec) for IPMI operation", placeholder="timeout",
                 ignored="bounded by login_timeout, power_timeout and fence_timeout"),
    fence_option("use_sudo", Kind.BOOLEAN, "Use sudo (without password) when calling 3rd party software",
                 aliases=("sudo",), ignored="fence_ipmi runs no ipmitool or other program that sudo could wrap"),
    fence_option("sudo_path", Kind.STRING, "Path to sudo binary", placeholder="path",
                 ignored="fence_ipmi runs no ipmitool or other program that sudo could wrap"),
) + with_port_as_ip(COMMON_OPTIONS)

LONGDESC = (
    "fence_ipmi powers a machine off and on through its BMC with IPMI 2.0 (RMCP+, cipher suite 17 or 3), "
    "using pyghmi rather than ipmitool. It accepts every fence_ipmilan option and alias (those that only "
    "concern ipmitool, sudo or a command prompt are accepted and ignored, saying so), verifies every off and "
    "on by polling the power state with a short backoff, handles method=cycle on a machine that is already "
    "off, bounds every wait by power_timeout and fence_timeout, reports every configuration problem at once "
    "and never passes the password or Kg to another process. A device controls the one machine behind its "
    "BMC (or, with target, behind the controller at that IPMB address): configure pcmk_host_list (the node "
    "name) on the stonith resource, or serve every node with one device through port_as_ip=1 and "
    "pcmk_host_map=node1:bmc1;node2:bmc2 (plug then names the BMC and ip is optional). The list action only "
    "prints a notice, as fence_ipmilan's; diag sends a diagnostic interrupt. Defaults that differ from "
    "fence_ipmilan's (lanplus, power_wait, stonith_status_sleep, disable_timeout) say so and why.")


def check(opts: FenceOptions) -> list[str]:
    """fence_ipmi's own validation rules."""
    problems = []
    if not opts.lanplus:
        problems.append("lanplus=0 asks for IPMI 1.5, which fence_ipmi refuses (password in clear or MD5, no "
                        "encryption): set lanplus=1 for IPMI 2.0 (RMCP+)")
    if opts.cipher not in (None, "", "3", "17"):
        if opts.cipher.strip() == "0":
            problems.append("cipher 0 sends commands without authentication; refused (use 17 or 3)")
        else:
            problems.append(f"cipher {opts.cipher!r} is not supported (pyghmi implements 17 and 3)")
    if opts.target:
        try:
            target_address(opts)
        except ValueError as exc:
            problems.append(f"target: {exc}")
    try:
        kg = kg_key(opts)
    except ValueError:
        problems.append("hexadecimal_kg is not hexadecimal")
    else:
        if kg is not None and len(kg) > 20:
            problems.append("hexadecimal_kg is longer than 20 bytes")
    if opts.username and len(opts.username.encode()) > 16:
        problems.append("username is longer than 16 bytes (IPMI limit)")
    if opts.password is not None and len(opts.password.reveal().encode()) > 20:
        problems.append("password is longer than 20 bytes (IPMI 2.0 limit)")
    return problems


AGENT = FenceAgent(
    name="fence_ipmi",
    shortdesc="Fence agent for IPMI (pyghmi, RMCP+)",
    longdesc=LONGDESC,
    options=IPMI_OPTIONS,
    connect=IpmiConnection,
    check=check,
    diag=True,
    vendor_url="https://www.intel.com/content/www/us/en/products/docs/servers/ipmi/ipmi-home.html",
)
