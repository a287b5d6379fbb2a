"""A real HTTP receiver on 127.0.0.1 (a free port, a thread) that checks webhook signatures.

Network: only 127.0.0.1, never another address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    calls: list[Call] = field(default_factory=list)

    def signature_valid(self, call: Call, secret: str) -> bool:
        timestamp = call.headers["X-Webhook-Timestamp"]
        expected = hmac.new(
            secret.encode(), f"{timestamp}.".encode() + call.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(call.headers["X-Webhook-Signature"], f"sha256={expected}")


@pytest.fixture
def receiver():
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec: Receiver = state["receiver"]
            rec.calls.append(Call(self.path, dict(self.headers.items()), body))
            code = rec.statuses.pop(0) if rec.statuses else 200
            answer = b"oops" if code >= 500 else b'{"ok": true}'
            self.send_response(code)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook?x=1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    return settings


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    # The backoff's first wait is 10 s in production; tests retry at once.
    from apps.webhooks import services

    monkeypatch.setattr(services, "RETRY_BASE_S", 0.0)
    monkeypatch.setattr(services, "TIMEOUT_S", 3.0)
