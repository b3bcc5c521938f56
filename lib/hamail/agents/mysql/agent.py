# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:hamail:mysql: one MariaDB/MySQL server (the Kopano guide's mysqld on a DRBD filesystem), with the
parameters of ocf:heartbeat:mysql, on hamail.service's daemon lifecycle.

Depth 0: the server's pid lives and its socket (and TCP port, unless skip-networking) accepts; depth 10: a login
over the socket, SELECT 1 and SELECT COUNT(*) FROM test_table (heartbeat mysql's check); depth 20 is depth 10: a
write round trip would need a table of the operator's, and upstream writes nothing either. Replication is not
managed: its parameters are accepted, and a promotable clone is refused.
"""

from __future__ import annotations

from hamail.agents.mysql import server
from hamail.ocf import ActionSpec, Agent, AgentSpec, ConfigError, Context, Kind, OCFError, Param, ParamTable, main
from hamail.service import daemon

REPLICATION = "Accepted for compatibility with ocf:heartbeat:mysql; unused: this agent runs one server, no replication."

PARAMS = ParamTable(
    Param("binary", Kind.STRING, "MySQL server binary",
          "The server program, run in the foreground: mariadbd/mysqld, or mysqld_safe as heartbeat mysql's "
          "default (the configuration is then checked with the mariadbd beside it).", default="/usr/sbin/mariadbd"),
    Param("client_binary", Kind.STRING, "MySQL client binary",
          "Accepted for compatibility; unused (the monitor talks to the server with PyMySQL over the socket, "
          "never through the client with a password in argv).", default="mysql"),
    Param("config", Kind.PATH, "MySQL config", "The server's option file (--defaults-file).",
          default="/etc/mysql/my.cnf"),
    Param("datadir", Kind.PATH, "MySQL datadir", "Directory holding the databases.", default="/var/lib/mysql"),
    Param("user", Kind.STRING, "MySQL user", "Unix user the server runs as.", default="mysql"),
    Param("group", Kind.STRING, "MySQL group", "Unix group of the server's directories.", default="mysql"),
    Param("log", Kind.PATH, "MySQL log file", "The server's error log (--log-error).",
          default="/var/log/mysql/error.log"),
    Param("pid", Kind.PATH, "MySQL pid file", "The server's pid file (--pid-file).",
          default="/var/run/mysqld/mysqld.pid"),
    Param("socket", Kind.PATH, "MySQL socket", "The server's unix socket (--socket); the monitor connects "
          "through it.", default="/var/run/mysqld/mysqld.sock"),
    Param("test_table", Kind.STRING, "MySQL test table",
          "Table the depth-10 monitor counts the rows of (SELECT COUNT(*)), as heartbeat mysql: database.table.",
          default="mysql.user"),
    Param("test_user", Kind.STRING, "MySQL test user",
          "User the depth-10 monitor logs in as over the socket (root: unix_socket authentication as the agent "
          "runs as root).", default="root"),
    Param("test_passwd", Kind.STRING, "MySQL test user password",
          "Password of test_user (prefer credentials_file: it keeps the password out of the CIB).", private=True),
    Param("credentials_file", Kind.PATH, "Test credentials file",
          "An option file ([client] user=..., password=...) of mode 0600 holding the monitor's credentials; "
          "overrides test_user/test_passwd."),
    Param("enable_creation", Kind.BOOLEAN, "Create the database if needed",
          "Initialise an empty datadir with mariadb-install-db on start.", default="false", fallback="false"),
    Param("additional_parameters", Kind.STRING, "Additional parameters to pass to mysqld",
          "Extra server options (split like a shell would, never run through one); they also count for the "
          "port the monitor checks."),
    Param("replication_user", Kind.STRING, "MySQL replication user", REPLICATION, default="root"),
    Param("replication_passwd", Kind.STRING, "MySQL replication user password", REPLICATION, private=True),
    Param("replication_port", Kind.STRING, "MySQL replication port", REPLICATION, default="3306"),
    Param("replication_require_ssl", Kind.STRING, "Configures replication to use SSL", REPLICATION,
          default="false"),
    Param("replication_master_ssl_ca", Kind.STRING, "Replication master SSL CA", REPLICATION),
    Param("replication_master_ssl_cert", Kind.STRING, "Replication master SSL certificate", REPLICATION),
    Param("replication_master_ssl_key", Kind.STRING, "Replication master SSL key", REPLICATION),
    Param("max_slave_lag", Kind.STRING, "Maximum time (seconds) a replica may lag", REPLICATION, default="3600"),
    Param("evict_outdated_slaves", Kind.STRING, "Evict outdated replicas", REPLICATION, default="false"),
    Param("reader_attribute", Kind.STRING, "Replica readability node attribute", REPLICATION,
          default="readable", unique_group="reader_attribute"),
)

SPEC = AgentSpec(
    name="mysql", version="0.1.0", shortdesc="One MariaDB/MySQL server, monitored through SQL",
    longdesc="Runs one MariaDB/MySQL server (mariadbd in the foreground) with the parameters of "
             "ocf:heartbeat:mysql, as the Kopano guide's mysqld on shared storage. Start checks the configuration "
             "with the server's own option parser (first [ERROR] line as the reason) and returns once SELECT 1 "
             "answers over the socket; stop sends SIGTERM and waits most of the stop timeout for InnoDB's shutdown "
             "before signalling the whole process group. Monitor depth 0: the process lives and its socket (and TCP "
             "port unless skip-networking) accepts; 10: a login as test_user (or credentials_file), SELECT 1 and "
             "SELECT COUNT(*) FROM test_table; 20: the same as 10 (no write: it would need a table of yours). "
             "Replication parameters are accepted and unused; a promotable clone is refused.",
    params=PARAMS,
    actions=(ActionSpec("start", 120), ActionSpec("stop", 120),
             ActionSpec("monitor", 30, interval=20, depth=0), ActionSpec("monitor", 30, interval=60, depth=10),
             ActionSpec("meta-data", 5), ActionSpec("validate-all", 30)),
)


def _identifier_ok(text: str) -> bool:
    """database.table (or table): plain or backquoted identifiers, nothing SQL could read as more.

    Scanned by hand: re (with enum) costs ~9 ms, and every monitor checks the default test_table."""
    parts, at = 0, 0
    while True:
        if text.startswith("`", at):
            end = text.find("`", at + 1)
            if end <= at + 1 or "\0" in text[at:end]:
                return False
            at = end + 1
        else:
            end = at
            while end < len(text) and (text[end].isascii() and text[end].isalnum() or text[end] in "_$"):
                end += 1
            if end == at:
                return False
            at = end
        parts += 1
        if at == len(text):
            return parts <= 2
        if text[at] != "." or parts == 2:
            return False
        at += 1


def validate(ctx: Context) -> None:
    """Refuse a promotable clone and a test_table that is no table name; start and validate-all also need this
    node's binary, files and accounts, the credentials file, and (validate-all) the server's configuration check."""
    env = ctx.env
    promotable = env.meta("promotable").lower() in ("true", "1", "yes", "on")
    if promotable or env.meta("promoted_max") or env.meta("master_max"):
        raise ConfigError("ocf:hamail:mysql runs one server and manages no replication: configure it as a "
                          "primitive (not a promotable clone), as the Kopano guide's mysqld; use ocf:hamail:galera "
                          "for a replicated database")
    table = ctx.config.test_table
    if table and not _identifier_ok(table):
        raise ConfigError(f"parameter test_table: {table!r} is not a table name (database.table)")
    if ctx.action not in ("start", "validate-all"):
        return
    server.check_node(ctx)
    server.credentials(ctx)
    if ctx.action == "validate-all":
        daemon.validate_all(SERVICE, ctx)
        server.check_config(ctx)


SERVICE = server.MySQLServer()
ACTIONS = daemon.actions(SERVICE)


def start(ctx: Context) -> int:
    """Prepare the directories (and database), check the configuration, then the shared start until SELECT 1
    answers; a server that dies starting is reported with its log's [ERROR] lines."""
    if SERVICE.find_pid(ctx) is None:
        server.prepare(ctx)
        server.check_config(ctx)
    since = server.log_size(ctx)
    try:
        return ACTIONS["start"](ctx)
    except OCFError as exc:
        errors = server.log_errors(ctx, since)
        if not errors:
            raise
        raise OCFError(exc.code, f"{exc.reason}: {errors}") from None


AGENT = Agent(SPEC, {"start": start, "stop": ACTIONS["stop"], "monitor": ACTIONS["monitor"]}, validate)

if __name__ == "__main__":
    main(AGENT)
