"""A loopback SMTP server for tests that send the failure notifier's email.

``smtp_server()`` serves on a free port of 127.0.0.1 and keeps every message it receives;
``smtp_connection(port)`` is the Airflow connection (JSON) of Airflow's SMTP provider that reaches it;
``EMAIL_NOTIFIER`` configures the notifier to email through that connection.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _SmtpSession(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: greet, accept one or more messages, store their data."""

    def handle(self) -> None:
        self.wfile.write(b"220 localhost test SMTP\r\n")
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 localhost\r\n")
            elif command == "DATA":
                self.wfile.write(b"354 end with <CRLF>.<CRLF>\r\n")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data)
                self.server.messages.append(b"".join(lines).decode("utf-8", "replace"))
                self.wfile.write(b"250 queued\r\n")
            elif command == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[str]]]:
    """An SMTP server on a free loopback port that keeps the messages it receives."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSession)
    server.daemon_threads = True
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.messages
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def smtp_connection(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": "airflow@example.com",
                "retry_limit": 0,
            },
        }
    )


EMAIL_NOTIFIER = {
    "class": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
    "kwargs": {
        "to": "close-oncall@example.com",
        "smtp_conn_id": "smtp_alerts",
        "subject": "{{ frontier_alert.subject }}",
        "html_content": "<pre>{{ frontier_alert.text }}</pre>",
    },
}
