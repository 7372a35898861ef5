#!/usr/bin/env python3
"""STAND-IN for Mailpit in the CI smoke stack: catches every mail on SMTP :1025 and lists them as JSON on
HTTP :8025 (GET /api/messages: envelope and raw message, base64). No web UI: the production compose file runs
the real axllent/mailpit image. `/mailpit readyz` is the health check, as with the real image."""

from __future__ import annotations

import base64
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

MESSAGES: list[dict[str, Any]] = []
LOCK = threading.Lock()


class Catcher:
    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self,
        server: object,
        session: object,
        envelope: Envelope,
    ) -> str:
        raw = envelope.original_content or b""
        item = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": base64.b64encode(raw).decode("ascii"),
        }
        with LOCK:
            MESSAGES.append(item)
        return "250 OK"


class Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/readyz":
            body = b"ok"
        elif self.path == "/api/messages":
            with LOCK:
                body = json.dumps(MESSAGES).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    if sys.argv[1:] == ["readyz"]:
        urllib.request.urlopen("http://127.0.0.1:8025/readyz", timeout=2)
        return
    controller = Controller(
        Catcher(),
        hostname="0.0.0.0",
        port=1025,
        decode_data=False,
        enable_SMTPUTF8=True,
        data_size_limit=100 * 1024 * 1024,
    )
    controller.start()
    print("mail catcher stand-in: SMTP :1025, JSON :8025/api/messages", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()


if __name__ == "__main__":
    main()
