"""A local HTTP server for the LLM provider tests: it replies with scripted wire-format bodies
and records every request it received (path, headers, JSON body), so a test can check both what
our code did with the answer and what the real SDK sent."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.protocol_server import ProtocolHandler, ProtocolServer


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


class _WireHandler(ProtocolHandler):
    def _handle(self) -> None:
        server: WireServer = self.service
        body = self.read_json()
        parts = urlsplit(self.path)
        received = Received(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        refused = server.check(received) if server.check is not None else None
        with server.lock:
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
        if not reply.trickle:
            self.send_body(reply.status, payload, content_type=content_type, headers=reply.headers)
            return
        try:
            self.send_response(reply.status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            step = -(-len(payload) // TRICKLE_PIECES)
            for start in range(0, len(payload), step):
                self.wfile.write(payload[start : start + step])
                self.wfile.flush()
                time.sleep(reply.trickle)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout): that is what the test wanted.
            server.client_hung_up()

    do_POST = _handle
    do_GET = _handle


class WireServer(ProtocolServer):
    """Started when made; `close()` (the `wire` fixture does) stops it."""

    handler = _WireHandler

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Received] = []
        self._replies: list[Reply] = []
        # The server's own validation of a request, as the real API's: the error reply for a
        # request it would refuse (without using up a scripted reply), or None.
        self.check: Callable[[Received], Reply | None] | None = None
        self.start()

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self._replies.extend(replies)
