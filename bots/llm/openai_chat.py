"""OpenAI, DeepSeek and any OpenAI-compatible server, through the official `openai` SDK's Chat
Completions API.

- openai: Structured Outputs (`response_format` json_schema, `strict: true`), and
  `max_completion_tokens` (reasoning models reject `max_tokens`).
- deepseek: DeepSeek's JSON Output (`response_format` json_object; the prompt carries the schema
  and an example, as its docs require) at `DEEPSEEK_BASE_URL`.
- openai_compatible: json_schema by default (vLLM, Ollama, LM Studio accept it), or json_object
  or nothing (`OPENAI_COMPATIBLE_RESPONSE_FORMAT`), at `OPENAI_COMPATIBLE_BASE_URL`.

No sampling parameters are sent: several current models reject non-default temperatures.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
from django.conf import settings

from bots.llm.base import Completion, LLMDecisionMaker, Turn, parse_retry_after, ssl_context
from bots.llm.exceptions import ProviderError
from bots.prompts import decision_json_schema

# Local servers usually want no key, but the SDK insists on one (Ollama's docs use a dummy too).
NO_KEY = "no-key"
RETRYABLE_STATUS = {408, 409, 429}


def _client(base_url: str, api_key: str, http_client: httpx2.Client) -> openai.OpenAI:
    # A client per attempt, on the attempt's own HTTP client (see bots.llm.base).
    return openai.OpenAI(api_key=api_key or NO_KEY, base_url=base_url, max_retries=0, http_client=http_client)


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = ""
    if isinstance(body, dict):
        error = body.get("error", body)
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
    return f"HTTP {exc.status_code}: {message or exc.message}"


def classify(exc: Exception, timeout: float) -> ProviderError:
    """Map an openai SDK exception to retryable or final."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(f"timed out after {timeout:g}s", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"connection error: {exc}", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ProviderError(
            _error_message(exc),
            retryable=status in RETRYABLE_STATUS or status >= 500,
            retry_after=parse_retry_after(exc.response.headers),
        )
    return ProviderError(f"{type(exc).__name__}: {exc}", retryable=False)


class OpenAIChatDecisionMaker(LLMDecisionMaker):
    provider = "openai"

    def _endpoint(self) -> tuple[str, str]:
        return str(settings.OPENAI_BASE_URL), str(settings.OPENAI_API_KEY)

    def _request_options(self, symbols: list[str]) -> dict[str, Any]:
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "trading_decision", "strict": True, "schema": decision_json_schema(symbols)},
            },
            "max_completion_tokens": int(settings.LLM_MAX_OUTPUT_TOKENS),
        }

    def _http_client(self) -> httpx2.Client:
        return openai.DefaultHttpxClient(verify=ssl_context())

    def _send(
        self, *, system: str, turns: list[Turn], symbols: list[str], timeout: float, http_client: httpx2.Client
    ) -> Completion:
        base_url, api_key = self._endpoint()
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        messages += [{"role": turn.role, "content": turn.text} for turn in turns]
        try:
            response = _client(base_url, api_key, http_client).chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                timeout=timeout,
                **self._request_options(symbols),
            )
        except openai.OpenAIError as exc:
            raise classify(exc, timeout) from exc
        usage = response.usage
        input_tokens = int(usage.prompt_tokens or 0) if usage else 0
        output_tokens = int(usage.completion_tokens or 0) if usage else 0
        if not response.choices:
            return Completion(text="", input_tokens=input_tokens, output_tokens=output_tokens, finish_reason="none")
        choice = response.choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None) or ""
        if choice.finish_reason == "content_filter" and not refusal:
            refusal = "the provider's content filter stopped the answer"
        return Completion(
            text=message.content or "",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            refusal=refusal,
            finish_reason=str(choice.finish_reason or ""),
        )


class DeepSeekDecisionMaker(OpenAIChatDecisionMaker):
    provider = "deepseek"

    def _endpoint(self) -> tuple[str, str]:
        return str(settings.DEEPSEEK_BASE_URL), str(settings.DEEPSEEK_API_KEY)

    def _request_options(self, symbols: list[str]) -> dict[str, Any]:
        return {"response_format": {"type": "json_object"}, "max_tokens": int(settings.LLM_MAX_OUTPUT_TOKENS)}


class OpenAICompatibleDecisionMaker(OpenAIChatDecisionMaker):
    provider = "openai_compatible"

    def _endpoint(self) -> tuple[str, str]:
        return str(settings.OPENAI_COMPATIBLE_BASE_URL), str(settings.OPENAI_COMPATIBLE_API_KEY)

    def _request_options(self, symbols: list[str]) -> dict[str, Any]:
        options: dict[str, Any] = {"max_tokens": int(settings.LLM_MAX_OUTPUT_TOKENS)}
        mode = settings.OPENAI_COMPATIBLE_RESPONSE_FORMAT
        if mode == "json_schema":
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "trading_decision", "strict": True, "schema": decision_json_schema(symbols)},
            }
        elif mode == "json_object":
            options["response_format"] = {"type": "json_object"}
        return options
