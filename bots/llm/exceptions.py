"""Errors of the LLM decision makers.

Only `LLMNotConfigured` leaves this package: `decide()` turns every other failure into a hold
with the error recorded, so nothing a provider or a model does can crash a cycle.
"""

from __future__ import annotations


class LLMNotConfigured(ValueError):
    """A provider or model cannot be used as configured (missing key, base URL or price)."""


class LLMCallFailed(Exception):
    """An API request failed for good: not retryable, out of retries, or out of wait time."""

    def __init__(self, message: str, *, attempts: int, latency_ms: int) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.latency_ms = latency_ms


class ProviderError(Exception):
    """One failed HTTP attempt, classified by the provider: may it be retried, and when."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
