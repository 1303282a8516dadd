"""Brokers that talk to real exchanges. The paper executor lives in trading.executors (its exchange
is the database); the live one is `CcxtBroker`.

ccxt is imported on first use, not with this package: `trading.brokers.base` (the interface) is
imported everywhere, and ccxt takes a third of a second to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trading.brokers.ccxt_broker import CcxtBroker
    from trading.models import ExchangeAccount

__all__ = ["CcxtBroker", "broker_for_account"]


def broker_for_account(
    account: ExchangeAccount, *, timeout_ms: int = 10000, config_overrides: dict[str, Any] | None = None
) -> CcxtBroker:
    """A ccxt broker with the account's (decrypted) keys, on its testnet when the account says so."""
    from trading.brokers.base import PermanentBrokerError
    from trading.brokers.ccxt_broker import CcxtBroker

    unreadable = account.unreadable_secrets
    if unreadable:
        raise PermanentBrokerError(
            f"the exchange account {account.label!r} has keys that cannot be decrypted ({', '.join(unreadable)}): "
            "FIELD_ENCRYPTION_KEY no longer holds the key they were written with; restore it or enter the keys again"
        )
    return CcxtBroker(
        exchange_id=account.exchange,
        api_key=account.api_key,
        secret=account.api_secret,
        password=account.passphrase,
        testnet=account.testnet,
        timeout_ms=timeout_ms,
        config_overrides=config_overrides,
    )


def __getattr__(name: str) -> Any:
    if name == "CcxtBroker":
        from trading.brokers.ccxt_broker import CcxtBroker

        return CcxtBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
