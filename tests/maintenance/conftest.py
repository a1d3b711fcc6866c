"""Local receivers for notifications: a tiny SMTP server and a webhook HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class Inbox:
    port: int = 0
    messages: list[dict] = field(default_factory=list)


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: HELO/EHLO, MAIL, RCPT, DATA, QUIT."""

    def _say(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        inbox: Inbox = self.server.inbox  # type: ignore[attr-defined]
        self._say("220 test ESMTP")
        msg: dict = {"rcpt": []}
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            cmd = raw.decode(errors="replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO", "RSET", "NOOP"):
                self._say("250 ok")
            elif verb == "MAIL":
                msg["from"] = cmd.split(":", 1)[1].strip()
                self._say("250 ok")
            elif verb == "RCPT":
                msg["rcpt"].append(cmd.split(":", 1)[1].strip())
                self._say("250 ok")
            elif verb == "DATA":
                self._say("354 go ahead")
                lines = []
                while True:
                    ln = self.rfile.readline()
                    if not ln or ln in (b".\r\n", b".\n"):
                        break
                    lines.append(ln.decode(errors="replace"))
                msg["data"] = "".join(lines)
                inbox.messages.append(msg)
                msg = {"rcpt": []}
                self._say("250 queued")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def smtp_inbox() -> Iterator[Inbox]:
    inbox = Inbox()
    srv = _Server(("127.0.0.1", 0), _SMTPHandler)
    srv.inbox = inbox  # type: ignore[attr-defined]
    inbox.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield inbox
    srv.shutdown()
    srv.server_close()


class _HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.inbox.messages.append({"path": self.path,  # type: ignore[attr-defined]
                                           "type": self.headers.get("Content-Type"),
                                           "json": json.loads(body)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook_inbox() -> Iterator[Inbox]:
    inbox = Inbox()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HookHandler)
    srv.inbox = inbox  # type: ignore[attr-defined]
    inbox.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield inbox
    srv.shutdown()
    srv.server_close()
