"""A local HTTP server for the LLM provider tests: it replies with scripted wire-format bodies
and records every request it received (path, headers, JSON body), so a test can check both what
our code did with the answer and what the real SDK sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    body: Any = None  # dict/list -> JSON; str/bytes as is
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow server, for client timeouts)
    # Seconds between the body's pieces (TRICKLE_PIECES of them): a server that answers slowly
    # but steadily, which no per-read timeout catches.
    trickle: float = 0.0


TRICKLE_PIECES = 20


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON when it is JSON, else the raw text


class WireServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.dropped = 0  # answers the client hung up on before the end
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        # The server's own validation of a request, as the real API's: the error reply for a
        # request it would refuse (without using up a scripted reply), or None.
        self.check: Callable[[Received], Reply | None] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                try:
                    body: Any = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw
                parts = urlsplit(self.path)
                received = Received(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                refused = server.check(received) if server.check is not None else None
                with server._lock:
                    server.requests.append(received)
                    if refused is not None:
                        reply = refused
                    elif server._replies:
                        reply = server._replies.pop(0)
                    else:
                        reply = Reply({"error": {"message": "test server: no scripted reply left"}}, status=599)
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                    content_type = "text/plain"
                else:
                    payload = reply.body or b""
                    content_type = "application/octet-stream"
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if reply.trickle:
                        step = -(-len(payload) // TRICKLE_PIECES)
                        for start in range(0, len(payload), step):
                            self.wfile.write(payload[start : start + step])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout): that is what the test wanted.
                    with server._lock:
                        server.dropped += 1

            do_POST = _handle
            do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
