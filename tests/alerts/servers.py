"""Local servers speaking the real protocols the alert channels talk to, for the tests:

- SmtpServer: aiosmtpd, a real SMTP server; it can refuse an address with 550.
- WebhookReceiver: an HTTP server that verifies the HMAC signature the way the README tells a
  receiver to, and answers with a programmed sequence of status codes.
- TelegramServer: the Bot API over HTTP (`/bot<token>/<method>`): getMe, deleteWebhook, long-polling
  getUpdates with real Update JSON, sendMessage, answerCallbackQuery, editMessageText; it can play a
  chat that blocked the bot (403) or flood control (429).

Self-contained (stdlib http.server + aiosmtpd); each runs in a thread on a free port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alerts.channels.webhook import verify
from tests.realtime.servers import free_port

# --- SMTP ------------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: Message
    received_at: float


class _SmtpHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        with self.server.lock:
            self.server.mails.append(
                ReceivedMail(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=message_from_bytes(content),
                    received_at=time.time(),
                )
            )
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[ReceivedMail] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.mails) >= count:
                    return list(self.mails)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mail(s), got {len(self.mails)}")


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


# --- Webhook receiver ------------------------------------------------------------------------------


@dataclass
class WebhookRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    secret: str
    port: int = field(default_factory=free_port)
    # Status codes to answer, in order; the last one repeats.
    statuses: list[int] = field(default_factory=lambda: [200])
    extra_headers: dict[str, str] = field(default_factory=dict)
    requests: list[WebhookRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[WebhookRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhook request(s), got {len(self.requests)}")


def _webhook_handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify(
                secret=receiver.secret,
                timestamp=self.headers.get("X-Tradingagent-Timestamp", ""),
                body=body,
                header=self.headers.get("X-Tradingagent-Signature", ""),
            )
            with receiver.lock:
                index = len(receiver.requests)
                receiver.requests.append(
                    WebhookRequest(
                        path=self.path, headers=dict(self.headers), body=body, signature_ok=ok, received_at=time.time()
                    )
                )
                status = receiver.statuses[min(index, len(receiver.statuses) - 1)]
            if not ok:
                status = 401  # what a receiver does with a forged or stale request
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            answer = b'{"ok": true}' if status < 300 else f'{{"error": "status {status}"}}'.encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


@contextmanager
def webhook_receiver(secret: str, **options: Any) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(secret=secret, **options)
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _webhook_handler(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# --- Telegram Bot API ------------------------------------------------------------------------------

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "tradingagent", "username": "tradingagent_test_bot"}


@dataclass
class SentMessage:
    method: str
    params: dict[str, Any]
    at: float


class TelegramServer:
    """The Bot API for one bot token, as the real one answers (`{"ok": ..., "result": ...}`)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.updates: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.blocked_chats: set[int] = set()
        self.flood_once: set[int] = set()  # chats whose next sendMessage gets a 429
        self.next_update_id = 100
        self.next_message_id = 1
        self.condition = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        # The chat as a person reads it (`SHOW_TRANSCRIPT=1 pytest -s ...` prints it).
        self.transcript: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # What a user does in their Telegram app:
    def push_message(
        self, *, chat_id: int, user_id: int, text: str, chat_type: str = "private", title: str = ""
    ) -> None:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat.update(first_name="Alice", username="alice_tg")
        else:
            chat["title"] = title or "Trading desk"
        message: dict[str, Any] = {
            "message_id": self._message_id(),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": "Alice", "language_code": "en"},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self.transcript.append(f"[chat {chat_id}] user {user_id}: {text}")
        self._push({"message": message})

    def push_callback(self, *, chat_id: int, user_id: int, message: SentMessage, data: str) -> None:
        rows = (message.params.get("reply_markup") or {}).get("inline_keyboard", [])
        label = next((b["text"] for row in rows for b in row if b.get("callback_data") == data), data)
        self.transcript.append(f"[chat {chat_id}] user {user_id} taps [{label}]")
        self._push(
            {
                "callback_query": {
                    "id": f"cbq-{self.next_update_id}",
                    "from": {"id": user_id, "is_bot": False, "first_name": "Alice"},
                    "chat_instance": f"ci-{chat_id}",
                    "data": data,
                    "message": {
                        "message_id": message.params["message_id"],
                        "date": int(message.at),
                        "chat": {"id": chat_id, "type": "private", "first_name": "Alice"},
                        "from": BOT_USER,
                        "text": message.params.get("text", ""),
                    },
                }
            }
        )

    def _push(self, body: dict[str, Any]) -> None:
        with self.condition:
            self.updates.append({"update_id": self.next_update_id, **body})
            self.next_update_id += 1
            self.condition.notify_all()

    def _message_id(self) -> int:
        with self.condition:
            self.next_message_id += 1
            return self.next_message_id

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        with self.condition:
            return [m for m in self.sent if str(m.params.get("chat_id")) == str(chat_id)]

    def wait_for(self, predicate: Callable[[list[SentMessage]], bool], timeout: float = 15.0) -> list[SentMessage]:
        deadline = time.monotonic() + timeout
        with self.condition:
            while not predicate(list(self.sent)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out; sent so far: {[(m.method, m.params.get('text')) for m in self.sent]}"
                    )
                self.condition.wait(left)
            return list(self.sent)

    # The Bot API methods:
    def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "getMe":
            return 200, {"ok": True, "result": {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False,
                                                 "supports_inline_queries": False}}  # fmt: skip
        if method in ("deleteWebhook", "setMyCommands", "answerCallbackQuery"):
            if method == "answerCallbackQuery":
                self._record(method, params)
            return 200, {"ok": True, "result": True}
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            timeout = min(float(params.get("timeout") or 0), 2.0)  # short polls keep tests quick to stop
            deadline = time.monotonic() + timeout
            with self.condition:
                while True:
                    ready = [u for u in self.updates if u["update_id"] >= offset]
                    left = deadline - time.monotonic()
                    if ready or left <= 0:
                        return 200, {"ok": True, "result": ready[: int(params.get("limit") or 100)]}
                    self.condition.wait(left)
        if method in ("sendMessage", "editMessageText"):
            chat_id = int(params["chat_id"])
            if chat_id in self.blocked_chats:
                return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
            if chat_id in self.flood_once:
                self.flood_once.discard(chat_id)
                return 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
                             "parameters": {"retry_after": 2}}  # fmt: skip
            if chat_id < 0 and chat_id == -1:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
            message_id = int(params["message_id"]) if method == "editMessageText" else self._message_id()
            params = {**params, "message_id": message_id}
            self._record(method, params)
            result = {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                      "chat": {"id": chat_id, "type": "private"}, "text": params.get("text", "")}  # fmt: skip
            return 200, {"ok": True, "result": result}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _record(self, method: str, params: dict[str, Any]) -> None:
        what = {"sendMessage": "bot", "editMessageText": "bot edits its message", "answerCallbackQuery": "bot notice"}
        line = f"[chat {params.get('chat_id', '·')}] {what.get(method, method)}: {params.get('text', '')}"
        buttons = [b["text"] for row in (params.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        if buttons:
            line += "  " + " ".join(f"[{b}]" for b in buttons)
        with self.condition:
            self.transcript.append(line)
            self.sent.append(SentMessage(method=method, params=params, at=time.time()))
            self.condition.notify_all()


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return dict(json.loads(raw or b"{}"))
    params: dict[str, Any] = {}
    for key, values in parse_qs(raw.decode(), keep_blank_values=True).items():
        value: Any = values[-1]
        # python-telegram-bot sends objects (reply_markup, allowed_updates) as JSON strings.
        if key in ("reply_markup", "allowed_updates", "entities", "link_preview_options"):
            value = json.loads(value)
        params[key] = value
    return params


def _telegram_handler(server: TelegramServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            prefix = f"/bot{server.token}/"
            if not self.path.startswith(prefix):
                self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                return
            params = _decode(raw, self.headers.get("Content-Type", ""))
            status, body = server.call(self.path[len(prefix) :].split("?")[0], params)
            self._answer(status, body)

        do_GET = do_POST

    return Handler


@contextmanager
def telegram_server(token: str) -> Iterator[TelegramServer]:
    server = TelegramServer(token)
    http = ThreadingHTTPServer(("127.0.0.1", server.port), _telegram_handler(server))
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        with server.condition:
            server.condition.notify_all()
        http.shutdown()
        http.server_close()
