"""The wire formats of each provider, as their servers really speak them: success bodies with
usage, refusals, error bodies and headers, and where the request puts model, schema and prompt.

Each `Protocol` is used by the parametrized provider tests with `tests.llm.wire.WireServer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.llm.wire import Received, Reply


@dataclass(frozen=True)
class Protocol:
    provider: str
    model: str
    api_key: str
    settings_prefix: str  # ANTHROPIC / OPENAI / DEEPSEEK / GEMINI / OPENAI_COMPATIBLE
    base_path: str  # appended to the server URL for <PREFIX>_BASE_URL

    # --- replies ---------------------------------------------------------------------------
    def ok(self, text: str, *, input_tokens: int = 1200, output_tokens: int = 300) -> Reply:
        raise NotImplementedError

    def refusal(self) -> Reply:
        raise NotImplementedError

    def empty(self) -> Reply:
        raise NotImplementedError

    def error(self, status: int, *, retry_after: str | None = None) -> Reply:
        raise NotImplementedError

    def check(self, request: Received) -> Reply | None:
        """The 400 the real API answers a request it refuses with (WireServer.check), or None."""
        return None

    # --- requests --------------------------------------------------------------------------
    def path(self) -> str:
        raise NotImplementedError

    def model_of(self, request: Received) -> str:
        return str(request.body["model"])

    def auth_of(self, request: Received) -> str:
        return request.headers.get("authorization", "")

    def schema_of(self, request: Received) -> dict[str, Any] | None:
        raise NotImplementedError

    def system_of(self, request: Received) -> str:
        raise NotImplementedError

    def user_texts(self, request: Received) -> list[str]:
        """Every user/tool-result text of the conversation, in order."""
        raise NotImplementedError

    def assistant_texts(self, request: Received) -> list[str]:
        raise NotImplementedError


# --- OpenAI Chat Completions (OpenAI, DeepSeek, OpenAI-compatible servers) -----------------------


@dataclass(frozen=True)
class ChatCompletions(Protocol):
    def _body(self, message: dict[str, Any], finish: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "id": "chatcmpl-AbC123",
            "object": "chat.completion",
            "created": 1763750000,
            "model": self.model,
            "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }

    def ok(self, text: str, *, input_tokens: int = 1200, output_tokens: int = 300) -> Reply:
        message = {"role": "assistant", "content": text, "refusal": None}
        return Reply(self._body(message, "stop", input_tokens, output_tokens), headers={"x-request-id": "req_1"})

    def refusal(self) -> Reply:
        message = {"role": "assistant", "content": None, "refusal": "I'm sorry, I can't help with trading decisions."}
        return Reply(self._body(message, "stop", 1200, 12))

    def empty(self) -> Reply:
        return Reply(self._body({"role": "assistant", "content": "", "refusal": None}, "length", 1200, 8192))

    def error(self, status: int, *, retry_after: str | None = None) -> Reply:
        kinds = {
            400: ("invalid_request_error", "Invalid schema for response_format"),
            401: ("invalid_request_error", "Incorrect API key provided"),
            429: ("requests", "Rate limit reached for requests"),
            500: ("server_error", "The server had an error while processing your request."),
            503: ("server_error", "The engine is currently overloaded, please try again later"),
        }
        kind, message = kinds.get(status, ("server_error", "error"))
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return Reply(body, status=status, headers=headers)

    def path(self) -> str:
        return f"{self.base_path}/chat/completions"

    def schema_of(self, request: Received) -> dict[str, Any] | None:
        response_format = request.body.get("response_format") or {}
        if response_format.get("type") != "json_schema":
            return None
        return response_format["json_schema"]["schema"]  # type: ignore[no-any-return]

    def system_of(self, request: Received) -> str:
        return "".join(m["content"] for m in request.body["messages"] if m["role"] == "system")

    def user_texts(self, request: Received) -> list[str]:
        return [m["content"] for m in request.body["messages"] if m["role"] == "user"]

    def assistant_texts(self, request: Received) -> list[str]:
        return [m["content"] for m in request.body["messages"] if m["role"] == "assistant"]


# --- Anthropic Messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class AnthropicMessages(Protocol):
    tool_mode: bool = False

    def _body(self, content: list[dict[str, Any]], stop: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def ok(self, text: str, *, input_tokens: int = 1200, output_tokens: int = 300) -> Reply:
        if self.tool_mode:
            try:
                payload = json.loads(text)
            except json.JSONDecodeError:
                # A tool input is always JSON on the wire; a broken answer is then a text block.
                content = [{"type": "text", "text": text}]
                return Reply(self._body(content, "end_turn", input_tokens, output_tokens))
            content = [
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "submit_decision", "input": payload}
            ]
            return Reply(self._body(content, "tool_use", input_tokens, output_tokens), headers={"request-id": "req_1"})
        content = [{"type": "text", "text": text}]
        return Reply(self._body(content, "end_turn", input_tokens, output_tokens), headers={"request-id": "req_1"})

    def refusal(self) -> Reply:
        content = [{"type": "text", "text": "I can't help with that."}]
        return Reply(self._body(content, "refusal", 1200, 10))

    def empty(self) -> Reply:
        return Reply(self._body([], "max_tokens", 1200, 8192))

    def error(self, status: int, *, retry_after: str | None = None) -> Reply:
        kinds = {
            400: "invalid_request_error",
            401: "authentication_error",
            429: "rate_limit_error",
            500: "api_error",
            529: "overloaded_error",
        }
        headers = {"request-id": "req_err", "x-should-retry": "true" if status >= 429 else "false"}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        body = {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": f"test error {status}"}}
        return Reply(body, status=status, headers=headers)

    def check(self, request: Received) -> Reply | None:
        # What the Messages API refuses with invalid_request_error (400): a turn with no content
        # and a text block without non-whitespace text.
        messages = request.body.get("messages") if isinstance(request.body, dict) else None
        for i, message in enumerate(messages or []):
            content = message.get("content")
            last_assistant = i == len(messages) - 1 and message.get("role") == "assistant"
            if not content and not last_assistant:
                return self._invalid(
                    f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                )
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            for j, block in enumerate(blocks):
                if block.get("type") == "text" and not str(block.get("text", "")).strip():
                    return self._invalid(
                        f"messages.{i}.content.{j}: text content blocks must contain non-whitespace text"
                    )
        return None

    def _invalid(self, message: str) -> Reply:
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        return Reply(body, status=400, headers={"request-id": "req_invalid", "x-should-retry": "false"})

    def path(self) -> str:
        return "/v1/messages"

    def schema_of(self, request: Received) -> dict[str, Any] | None:
        if self.tool_mode:
            assert request.body["tool_choice"] == {"type": "tool", "name": "submit_decision"}
            return request.body["tools"][0]["input_schema"]  # type: ignore[no-any-return]
        fmt = request.body["output_config"]["format"]
        assert fmt["type"] == "json_schema"
        return fmt["schema"]  # type: ignore[no-any-return]

    def system_of(self, request: Received) -> str:
        return str(request.body["system"])

    def user_texts(self, request: Received) -> list[str]:
        texts = []
        for message in request.body["messages"]:
            if message["role"] != "user":
                continue
            content = message["content"]
            if isinstance(content, str):
                texts.append(content)
            else:
                for block in content:
                    texts.append(block.get("text") or block.get("content") or "")
        return texts

    def assistant_texts(self, request: Received) -> list[str]:
        texts = []
        for message in request.body["messages"]:
            if message["role"] != "assistant":
                continue
            content = message["content"]
            if isinstance(content, str):
                texts.append(content)
            else:
                for block in content:
                    texts.append(block.get("text") or json.dumps(block.get("input")))
        return texts


# --- Gemini generateContent ----------------------------------------------------------------------


@dataclass(frozen=True)
class GeminiGenerateContent(Protocol):
    def ok(self, text: str, *, input_tokens: int = 1200, output_tokens: int = 300) -> Reply:
        body = {
            "candidates": [
                {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": input_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": input_tokens + output_tokens,
            },
            "modelVersion": self.model,
            "responseId": "resp-1",
        }
        return Reply(body)

    def refusal(self) -> Reply:
        body = {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 1200, "totalTokenCount": 1200},
            "modelVersion": self.model,
        }
        return Reply(body)

    def empty(self) -> Reply:
        body = {
            "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
            "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 0, "totalTokenCount": 1200},
            "modelVersion": self.model,
        }
        return Reply(body)

    def error(self, status: int, *, retry_after: str | None = None) -> Reply:
        statuses = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        body = {"error": {"code": status, "message": f"test error {status}", "status": statuses.get(status, "UNKNOWN")}}
        return Reply(body, status=status, headers=headers)

    def check(self, request: Received) -> Reply | None:
        # What generateContent refuses with INVALID_ARGUMENT (400): a content without parts, and
        # a part whose text is empty.
        contents = request.body.get("contents") if isinstance(request.body, dict) else None
        for content in contents or []:
            parts = content.get("parts")
            if not parts:
                return self._invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.\n")
            if any("text" in part and not part["text"] for part in parts):
                return self._invalid(
                    "Unable to submit request because it has an empty text parameter. "
                    "Add a value to the parameter and try again."
                )
        return None

    def _invalid(self, message: str) -> Reply:
        return Reply({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}, status=400)

    def path(self) -> str:
        return f"/v1beta/models/{self.model}:generateContent"

    def model_of(self, request: Received) -> str:
        return request.path.rsplit("/", 1)[1].split(":", 1)[0]

    def auth_of(self, request: Received) -> str:
        return request.headers.get("x-goog-api-key", "")

    def schema_of(self, request: Received) -> dict[str, Any] | None:
        config = request.body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        return config["responseJsonSchema"]  # type: ignore[no-any-return]

    def system_of(self, request: Received) -> str:
        return "".join(p["text"] for p in request.body["systemInstruction"]["parts"])

    def user_texts(self, request: Received) -> list[str]:
        return ["".join(p.get("text", "") for p in c["parts"]) for c in request.body["contents"] if c["role"] == "user"]

    def assistant_texts(self, request: Received) -> list[str]:
        return [
            "".join(p.get("text", "") for p in c["parts"]) for c in request.body["contents"] if c["role"] == "model"
        ]


OPENAI = ChatCompletions("openai", "gpt-5-mini", "sk-test-openai", "OPENAI", "/v1")
DEEPSEEK = ChatCompletions("deepseek", "deepseek-v4-flash", "sk-test-deepseek", "DEEPSEEK", "")
OPENAI_COMPATIBLE = ChatCompletions("openai_compatible", "qwen3:8b", "", "OPENAI_COMPATIBLE", "/v1")
ANTHROPIC = AnthropicMessages("anthropic", "claude-sonnet-4-6", "sk-ant-test", "ANTHROPIC", "")
ANTHROPIC_TOOL = AnthropicMessages("anthropic", "claude-opus-4-1", "sk-ant-test", "ANTHROPIC", "", tool_mode=True)
GEMINI = GeminiGenerateContent("gemini", "gemini-2.5-flash", "gm-test-key", "GEMINI", "")

ALL = [OPENAI, DEEPSEEK, OPENAI_COMPATIBLE, ANTHROPIC, ANTHROPIC_TOOL, GEMINI]
