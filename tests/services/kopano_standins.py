# SPDX-License-Identifier: GPL-2.0-or-later
"""Protocol stand-ins for Kopano's daemons (Kopano is in neither registry here): test-only servers speaking the
same protocols on the sockets Kopano's configuration names, run as real processes named kopano-<service>.

`install(bindir)` writes one executable per service (`kopano-server`, `kopano-dagent`, ...) that runs
`main(service)` here, so /proc/PID/comm is the daemon's name and the agent's process check is the real one.
Each stand-in takes Kopano's command line (`-c`/`--config`, `-F`; kopano-dagent `-l`), reads the keys Kopano reads
(server_listen, server_pipe_enabled/server_pipe_name, lmtp_listen, imap_listen, pop3_listen, ical_listen,
server_bind_name, server_bind/server_port, pid_file, log_file), refuses an unknown key as Kopano does (a
`Config error:` line in log_file, exit status 1), writes pid_file only when the configuration names one (as
Kopano 8 does; Kopano 10 writes none), and answers:

- server: HTTP on every server_listen address and on the unix socket (GET: 405, as gSOAP; POST: a SOAP fault),
  and the stand-ins' own user lookups (POST /standin/resolve, /standin/logon) against `standin_users`
- dagent: LMTP (greeting, LHLO, MAIL, RCPT, RSET, NOOP, QUIT); RCPT asks the server at server_socket, as
  kopano-dagent resolves a recipient through kopano-server ("503 5.1.1 Connection error" when it cannot)
- gateway: IMAP (greeting, CAPABILITY, NOOP, LOGIN, SELECT/EXAMINE, LOGOUT), also over TLS on imaps_listen
  (ssl_certificate_file, ssl_private_key_file), and POP3 (greeting, CAPA, USER, PASS, STAT, QUIT); logins ask
  the server as RCPT does
- ical, presence: HTTP (401 and 404)
- search: its line protocol (PROPS -> OK:...)
- spooler, monitor: no listener, they only run

Stand-in keys: `standin_start_delay = SECONDS` listens only after that long (a slow start),
`standin_refuse_delay = SECONDS` refuses a configuration only after that long (a slow exit); the server's
`standin_users = address:password ...` are the mailboxes it knows.
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

SERVICES = ("server", "spooler", "dagent", "gateway", "ical", "monitor", "search", "presence")
KNOWN = {"server_listen", "server_pipe_enabled", "server_pipe_name", "lmtp_listen", "imap_listen", "imaps_listen",
         "pop3_listen", "pop3s_listen", "ical_listen", "icals_listen", "server_bind_name", "server_bind",
         "server_port", "server_socket", "pid_file", "run_as_user", "run_as_group", "log_file", "log_method",
         "log_level", "ssl_certificate_file", "ssl_private_key_file", "standin_start_delay", "standin_refuse_delay",
         "standin_users"}
HERE = os.path.dirname(os.path.abspath(__file__))


def install(bindir) -> None:
    """Write the kopano-<service> executables into bindir."""
    os.makedirs(bindir, exist_ok=True)
    for service in SERVICES:
        path = os.path.join(str(bindir), f"kopano-{service}")
        with open(path, "w") as handle:
            handle.write(f"#!/usr/bin/python3 -S\nimport sys\nsys.path.insert(0, {HERE!r})\n"
                         f"import kopano_standins\nkopano_standins.main({service!r}, sys.argv[1:])\n")
        os.chmod(path, 0o755)


def read_config(path: str) -> dict:
    """key = value lines (Kopano ignores lines without '=')."""
    values = {}
    with open(path) as handle:
        for line in handle:
            if line.startswith(("#", "!")) or "=" not in line:
                continue
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


class Log:
    """Appends to log_file like Kopano's file logger (stderr when '-' or unset)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, text: str) -> None:
        line = f"{time.strftime('%a %b %d %H:%M:%S %Y')}: [{os.getpid()}] {text}\n"
        if self.path.startswith("/"):
            with open(self.path, "a") as handle:
                handle.write(line)
        else:
            sys.stderr.write(line)


def addresses(spec: str) -> list:
    """Kopano bind specifications as ('tcp', host, port) or ('unix', path)."""
    found = []
    for word in spec.split():
        if word.startswith("unix:"):
            found.append(("unix", word[5:]))
            continue
        if word.startswith("/"):
            found.append(("unix", word))
            continue
        host, _, port = word.rpartition(":")
        host = host.partition("%")[0].strip("[]")
        found.append(("tcp", "127.0.0.1" if host in ("*", "", "0.0.0.0") else host, int(port)))
    return found


class _TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _Unix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class _TLS(_TCP):
    """A TCP listener whose connections speak TLS from the start (imaps)."""

    context = None

    def get_request(self):
        """Wrap each accepted connection; the handshake happens in the handler's thread."""
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


def ask_server(cfg: dict, what: str, body: str) -> int:
    """The stand-in server's answer (HTTP status) to a lookup, over server_socket; 0 when it cannot be reached."""
    import http.client
    url = cfg.get("server_socket", "file:///var/run/kopano/server.sock")
    try:
        if url.startswith("file://"):
            conn = http.client.HTTPConnection("localhost", timeout=5)
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(5)
            sock.connect(url[len("file://"):])
            conn.sock = sock
        else:
            hostport = url.split("://", 1)[1].split("/", 1)[0]
            conn = http.client.HTTPConnection(hostport, timeout=5)
        conn.request("POST", f"/standin/{what}", body=body.encode())
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return 0


class LineHandler(socketserver.StreamRequestHandler):
    """A line protocol: greeting, then answer(line) for each line until it returns None."""

    greeting = b""
    cfg: dict = {}

    def send(self, text: str) -> None:
        """Write one CRLF-terminated reply line."""
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        """Serve one client (a TLS connection after its handshake)."""
        if hasattr(self.request, "do_handshake"):
            try:
                self.request.do_handshake()
            except OSError:
                return
        if self.greeting:
            self.send(self.greeting.decode())
        for raw in self.rfile:
            if not self.answer(raw.decode(errors="replace").strip()):
                return

    def answer(self, line: str) -> bool:
        """Reply to one line; False ends the session."""
        return False


class LMTP(LineHandler):
    """kopano-dagent's LMTP listener."""

    greeting = b"220 2.1.5 LMTP server is ready"

    def answer(self, line: str) -> bool:
        """LHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""
        verb = line.split(" ", 1)[0].upper()
        if verb == "LHLO":
            self.send("250-SERVER ready")
            self.send("250-PIPELINING")
            self.send("250-ENHANCEDSTATUSCODES")
            self.send("250 RSET")
        elif verb == "RCPT":
            address = line.partition(":")[2].strip().strip("<>")
            status = ask_server(self.cfg, "resolve", address)
            if status == 200:
                self.send("250 2.1.5 Ok")
            elif status == 404:
                self.send("503 5.1.1 User does not exist")
            else:
                self.send("503 5.1.1 Connection error: 0x80040115")
        elif verb in ("MAIL", "RSET", "NOOP"):
            self.send("250 2.1.0 Ok")
        elif verb == "DATA":
            self.send("503 5.1.1 No recipients")
        elif verb == "QUIT":
            self.send("221 2.0.0 Bye")
            return False
        else:
            self.send("500 5.5.2 Unknown command")
        return True


class IMAP(LineHandler):
    """kopano-gateway's IMAP listener."""

    greeting = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] IMAP gateway ready"

    def answer(self, line: str) -> bool:
        """CAPABILITY, NOOP, LOGIN, SELECT, LOGOUT; anything else is refused."""
        tag, _, rest = line.partition(" ")
        command = rest.split(" ", 1)[0].upper()
        if command == "LOGIN":
            user, _, password = rest.split(" ", 1)[1].partition(" ")
            if ask_server(self.cfg, "logon", f"{user.strip(chr(34))}\n{password.strip(chr(34))}") == 200:
                self.send(f"{tag} OK LOGIN completed")
            else:
                self.send(f"{tag} NO [AUTHENTICATIONFAILED] LOGIN failed")
            return True
        if command in ("SELECT", "EXAMINE"):
            self.send("* 0 EXISTS")
            self.send(f"{tag} OK [READ-ONLY] EXAMINE completed")
            return True
        if command == "CAPABILITY":
            self.send("* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN IDLE NAMESPACE")
            self.send(f"{tag} OK CAPABILITY completed")
        elif command == "NOOP":
            self.send(f"{tag} OK NOOP completed")
        elif command == "LOGOUT":
            self.send("* BYE server logging out")
            self.send(f"{tag} OK LOGOUT completed")
            return False
        else:
            self.send(f"{tag} BAD command not supported by the stand-in")
        return True


class POP3(LineHandler):
    """kopano-gateway's POP3 listener."""

    greeting = b"+OK POP3 gateway ready"

    def answer(self, line: str) -> bool:
        """CAPA, USER, PASS, STAT, QUIT."""
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "USER":
            self.user = argument
            self.send("+OK Waiting for password")
            return True
        if verb == "PASS":
            ok = ask_server(self.cfg, "logon", f"{getattr(self, 'user', '')}\n{argument}") == 200
            self.send("+OK Username and password accepted" if ok else "-ERR Wrong username or password")
            return True
        if verb == "STAT":
            self.send("+OK 0 0")
            return True
        if verb == "CAPA":
            for text in ("+OK Capability list follows", "TOP", "UIDL", "USER", "."):
                self.send(text)
        elif verb == "QUIT":
            self.send("+OK Bye")
            return False
        else:
            self.send("-ERR command not supported by the stand-in")
        return True


class Search(LineHandler):
    """kopano-search's socket protocol."""

    def answer(self, line: str) -> bool:
        """PROPS -> OK:<excluded properties>; one command per connection, as kopano-search."""
        if line.split(" ", 1)[0] == "PROPS":
            self.send("OK:268370178 268435486")
        return False


class HTTP(BaseHTTPRequestHandler):
    """HTTP answering every GET with `status` (server: 405 as gSOAP; ical: 401; presence: 404)."""

    status = 404
    cfg: dict = {}
    protocol_version = "HTTP/1.0"

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Kopano CalDav Gateway"')
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Every GET gets the stand-in's status."""
        self._reply(self.status, f"{self.status}\n".encode())

    def do_POST(self) -> None:  # noqa: N802
        """The stand-ins' user lookups; else a SOAP fault, as kopano-server answers a request it cannot parse."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace")
        users = dict(word.split(":", 1) for word in self.cfg.get("standin_users", "").split())
        if self.path == "/standin/resolve":
            return self._reply(200 if body in users else 404, b"")
        if self.path == "/standin/logon":
            user, _, password = body.partition("\n")
            return self._reply(200 if user in users and users[user] == password else 403, b"")
        fault = (b'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV='
                 b'"http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>'
                 b'SOAP-ENV:Client</faultcode></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>')
        self._reply(500, fault, "text/xml")

    def address_string(self) -> str:
        """Unix-socket clients have no address."""
        return "local"

    def log_message(self, *args) -> None:
        """Quiet."""


def _http(status: int):
    return type("HTTP%d" % status, (HTTP,), {"status": status})


def listeners(service: str, cfg: dict) -> list:
    """(handler class, address) pairs this stand-in serves (('tls', host, port): TCP with TLS)."""
    def spec(key: str, default: str, handler) -> list:
        return [(handler, address) for address in addresses(cfg.get(key, default))]
    if service == "server":
        found = spec("server_listen", "*:236", _http(405))
        if cfg.get("server_pipe_enabled", "yes") != "no":
            found.append((_http(405), ("unix", cfg.get("server_pipe_name", "/var/run/kopano/server.sock"))))
        return found
    if service == "dagent":
        return spec("lmtp_listen", "*:2003", LMTP)
    if service == "gateway":
        tls = [(IMAP, ("tls",) + address[1:]) for address in addresses(cfg.get("imaps_listen", ""))]
        return spec("imap_listen", "*:143", IMAP) + tls + spec("pop3_listen", "*:110", POP3)
    if service == "ical":
        return spec("ical_listen", "*:8080", _http(401))
    if service == "search":
        name = cfg.get("server_bind_name", "file:///var/run/kopano/search.sock")
        return [(Search, ("unix", name[len("file://"):]))]
    if service == "presence":
        return [(_http(404), ("tcp", cfg.get("server_bind", "127.0.0.1"), int(cfg.get("server_port", "1234"))))]
    return []


def serve(handler, address, cfg: dict) -> socketserver.BaseServer:
    """Start one listener in a thread."""
    # Replies go out line by line: on TCP without TCP_NODELAY, Nagle and the client's delayed ACK add 40 ms to
    # each multi-line reply, which a real server (buffering its replies) does not.
    handler = type(handler.__name__, (handler,), {"cfg": cfg, "disable_nagle_algorithm": address[0] != "unix"})
    if address[0] == "tls":
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cfg["ssl_certificate_file"], cfg["ssl_private_key_file"])
        server = type("TLS", (_TLS,), {"context": context})((address[1], address[2]), handler)
    elif address[0] == "unix":
        try:
            os.unlink(address[1])
        except FileNotFoundError:
            pass
        server = _Unix(address[1], handler)
    else:
        server = _TCP((address[1], address[2]), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(service: str, argv: list) -> None:
    """Run as kopano-<service> would: read the configuration, listen, run until SIGTERM."""
    config, index = f"/etc/kopano/{service}.cfg", 0
    while index < len(argv):
        if argv[index] in ("-c", "--config") and index + 1 < len(argv):
            config, index = argv[index + 1], index + 1
        elif argv[index].startswith("--config="):
            config = argv[index][len("--config="):]
        index += 1
    cfg = read_config(config)
    log = Log(cfg.get("log_file", "-"))
    unknown = sorted(set(cfg) - KNOWN)
    if unknown:
        time.sleep(float(cfg.get("standin_refuse_delay", "0")))
        log(f"Config error: Unknown option \"{unknown[0]}\" found!")
        sys.exit(1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if cfg.get("pid_file"):
        with open(cfg["pid_file"], "w") as handle:
            handle.write(f"{os.getpid()}\n")
    time.sleep(float(cfg.get("standin_start_delay", "0")))
    servers = [serve(handler, address, cfg) for handler, address in listeners(service, cfg)]
    log(f"Starting kopano-{service} stand-in, pid {os.getpid()}")
    while not stop.wait(0.2):
        pass
    for server in servers:
        server.server_close()
        if isinstance(server, _Unix):
            try:
                os.unlink(server.server_address)
            except OSError:
                pass
    log(f"kopano-{service} stand-in stopped")
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
