"""The base of every local server that stands in for the outside world in the tests.

An exchange, an LLM API, a webhook receiver, Telegram's Bot API, an SMTP relay: the tests replace
each with a server on 127.0.0.1 that speaks the service's real wire protocol, so that the official
client is exercised end to end (never a mock of our own function). What such servers share lives
here, once: a free port, a thread per connection, a stop that takes milliseconds, a lock for the
state the handlers share, and the handler chores (reading a body, answering JSON, a client that
hung up). Today's servers: `tests.llm.wire.WireServer` (every LLM provider),
`tests.marketdata.binance_server.BinanceServer` (public market data),
`tests.trading.binance_server.BinanceServer` (signed orders), `tests.bots.conftest.DownLLM`.

A new server is a handler and a server class:

    class HookHandler(ProtocolHandler):
        def do_POST(self) -> None:
            body = self.read_json()
            with self.service.lock:              # the server object: its state and its lock
                self.service.received.append(body)
            self.send_json(200, {"ok": True})

    class HookReceiver(ProtocolServer):
        handler = HookHandler

        def __init__(self) -> None:
            super().__init__()
            self.received: list[object] = []

    def test_alert_reaches_the_webhook() -> None:
        with HookReceiver() as receiver:          # listening until the block ends
            settings.ALERT_WEBHOOK_URL = receiver.url + "/hook"
            ...
            assert receiver.received == [...]

Good to know:

* `with Server() as s` starts and stops it; `start()`/`close()` do the same by hand (a fixture
  that yields the server). `close()` returns in about `POLL_INTERVAL` (socketserver's default
  poll of 0.5 s once cost the suite half a second per test) and does not wait for handlers
  still running: they are daemon threads, so a handler sleeping on purpose (a slow answer for a
  client timeout) never delays the end of a test.
* A slow or trickling answer is the handler's business (`time.sleep` between writes); a client
  that gave up is not an error: `send_body` counts it in `dropped` instead of raising.
* Not HTTP (SMTP, a raw TCP protocol): set `server_class = socketserver.ThreadingTCPServer` and
  make `handler` a `socketserver.StreamRequestHandler` (which also sees `self.server.service`).
"""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

# How often the serving thread checks whether it was asked to stop: the time `close()` takes.
POLL_INTERVAL = 0.01


class ProtocolHandler(BaseHTTPRequestHandler):
    """Base of a protocol server's HTTP handler: HTTP/1.1 keep-alive, quiet, small helpers."""

    protocol_version = "HTTP/1.1"  # clients keep their connection, as with the real service

    @property
    def service(self) -> Any:
        """The `ProtocolServer` this request reached: the fake service's state and lock."""
        return self.server.service  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log on the test output

    def read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def read_json(self) -> Any:
        """The request body as JSON; the raw text when it is not JSON, None when empty."""
        raw = self.read_body().decode()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def send_body(
        self, status: int, payload: bytes, *, content_type: str, headers: dict[str, str] | None = None
    ) -> bool:
        """Answer with `payload`; False (and counted in the server's `dropped`) when the client hung up."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.service.client_hung_up()
            return False

    def send_json(
        self,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> bool:
        return self.send_body(status, json.dumps(body).encode(), content_type=content_type, headers=headers)


class ProtocolServer:
    """A local server on 127.0.0.1 speaking a real protocol (see the module docstring)."""

    handler: ClassVar[type[socketserver.BaseRequestHandler]] = ProtocolHandler
    server_class: ClassVar[type[socketserver.TCPServer]] = ThreadingHTTPServer
    host: ClassVar[str] = "127.0.0.1"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dropped = 0  # answers the client hung up on before the end (it timed out)
        self._server = self.server_class((self.host, 0), self.handler)
        # One daemon thread per connection, never joined: see the module docstring.
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._server.block_on_close = False  # type: ignore[attr-defined]
        self._server.service = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._closed = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port (idempotent); running handlers are not waited for."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def client_hung_up(self) -> None:
        with self.lock:
            self.dropped += 1

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
