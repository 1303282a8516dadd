"""The live broker (real ccxt client) against a local server speaking Binance's spot REST API."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from tests.factories import ExchangeAccountFactory
from tests.trading.binance_server import BinanceServer
from tests.trading.conftest import API_KEY, SECRET
from trading.brokers import broker_for_account
from trading.brokers.base import BrokerOrder, PermanentBrokerError, TransientBrokerError
from trading.brokers.ccxt_broker import CcxtBroker

pytestmark = pytest.mark.slow

SYMBOL = "BTC/USDT"


def market_buy(client_order_id: str, quantity: str = "0.01") -> BrokerOrder:
    return BrokerOrder(
        client_order_id=client_order_id, symbol=SYMBOL, side="buy", type="market", quantity=Decimal(quantity)
    )


def make_broker(binance: BinanceServer, **kwargs: object) -> CcxtBroker:
    options: dict[str, object] = {
        "exchange_id": "binance",
        "api_key": API_KEY,
        "secret": SECRET,
        "testnet": True,
        "timeout_ms": 3000,
        "config_overrides": binance.ccxt_overrides(),
    }
    options.update(kwargs)
    return CcxtBroker(**options)  # type: ignore[arg-type]


def test_filled_market_order_carries_the_client_id(binance: BinanceServer, broker: CcxtBroker) -> None:
    result = broker.submit(market_buy("ta-7-1700000000-o0"))

    (post,) = binance.state.posts()
    assert post.params["newClientOrderId"] == "ta-7-1700000000-o0"
    assert post.params["type"] == "MARKET" and post.params["side"] == "BUY" and post.params["quantity"] == "0.01"
    assert post.api_key == API_KEY and "signature" in post.params
    assert result.status == "filled"
    assert result.exchange_order_id == str(binance.state.orders[0]["orderId"])
    assert result.filled_quantity == Decimal("0.01")
    assert result.average_price == Decimal("50000")
    # 0.1% of 500 USDT, reported per fill and in total, as Decimals.
    assert result.fee == Decimal("0.5")
    (fill,) = result.fills
    assert (fill.quantity, fill.price, fill.fee, fill.exchange_fill_id) == (
        Decimal("0.01"),
        Decimal("50000"),
        Decimal("0.5"),
        "5000",
    )
    assert fill.time is not None and fill.time.utcoffset() is not None


def test_timed_out_submit_is_transient_and_lookup_finds_the_order(binance: BinanceServer) -> None:
    broker = make_broker(binance, timeout_ms=500)
    broker.submit(market_buy("warm-up"))  # markets and clock offset loaded with a fast server
    binance.state.order_delay = 2.0  # the order is recorded, the answer comes too late

    with pytest.raises(TransientBrokerError) as caught:
        broker.submit(market_buy("ta-7-1700000180-o0"))
    assert "RequestTimeout" in str(caught.value)

    binance.state.order_delay = 0
    found = broker.lookup(client_order_id="ta-7-1700000180-o0", symbol=SYMBOL)
    assert found is not None
    assert found.status == "filled" and found.filled_quantity == Decimal("0.01")
    # The lookup asked by client id, and the order was placed once only.
    assert binance.state.requests[-1].params["origClientOrderId"] == "ta-7-1700000180-o0"
    assert [p.params["newClientOrderId"] for p in binance.state.posts()] == ["warm-up", "ta-7-1700000180-o0"]
    broker.close()


def test_timed_out_lookup_is_transient_and_hides_the_signature(
    binance: BinanceServer, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(binance, timeout_ms=500)
    broker.lookup(client_order_id="warm-up", symbol=SYMBOL)
    binance.state.query_delay = 2.0
    with pytest.raises(TransientBrokerError) as caught:
        broker.lookup(client_order_id="slow", symbol=SYMBOL)
    # The signed URL is quoted by ccxt; its signature is masked, the rest stays useful.
    signature = binance.state.requests[-1].params["signature"]
    assert "origClientOrderId=slow" in str(caught.value) and "signature=***" in str(caught.value)
    assert signature not in str(caught.value) and signature not in caplog.text
    broker.close()


def test_lookup_of_an_unknown_order_is_none(binance: BinanceServer, broker: CcxtBroker) -> None:
    assert broker.lookup(client_order_id="never-sent", symbol=SYMBOL) is None
    assert binance.state.requests[-1].path == "/api/v3/order"
    assert binance.state.requests[-1].method == "GET"


def test_insufficient_balance_is_permanent(binance: BinanceServer, broker: CcxtBroker) -> None:
    with pytest.raises(PermanentBrokerError, match="InsufficientFunds"):
        broker.submit(market_buy("too-big", quantity="1"))  # 50,000 USDT, the account has 10,000
    assert binance.state.orders == []


def test_rate_limit_is_transient(binance: BinanceServer, broker: CcxtBroker) -> None:
    broker.lookup(client_order_id="warm-up", symbol=SYMBOL)
    binance.state.rate_limited = 1
    with pytest.raises(TransientBrokerError, match="429"):
        broker.submit(market_buy("limited"))
    assert binance.state.orders == []
    # The next attempt, after a lookup that finds nothing, goes through.
    assert broker.lookup(client_order_id="limited", symbol=SYMBOL) is None
    assert broker.submit(market_buy("limited")).status == "filled"


def test_wrong_secret_fails_the_signature_check(binance: BinanceServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    broker = make_broker(binance, secret="not-the-secret-0123456789")
    with pytest.raises(PermanentBrokerError, match="AuthenticationError") as caught:
        broker.submit(market_buy("bad-signature"))
    assert "Signature for this request is not valid" in str(caught.value)
    assert binance.state.orders == []
    # Neither the key nor the secret nor the signature leaks into the message or the logs.
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(broker)):
        assert API_KEY not in text and "not-the-secret-0123456789" not in text
    assert binance.state.posts()[0].params["signature"] not in caplog.text


def test_wrong_api_key_is_refused(binance: BinanceServer) -> None:
    broker = make_broker(binance, api_key="someone-elses-key")
    with pytest.raises(PermanentBrokerError, match="Invalid API-key"):
        broker.submit(market_buy("bad-key"))
    assert binance.state.posts()[0].api_key == "someone-elses-key"
    assert binance.state.orders == []


def test_clock_offset_is_measured_with_the_server_time(binance: BinanceServer) -> None:
    # The server's clock runs 60 s ahead: a timestamp from our clock is outside its recvWindow.
    binance.state.time_offset_ms = 60_000
    broker = make_broker(binance)
    assert broker.submit(market_buy("synced")).status == "filled"
    assert any(r.path == "/api/v3/time" for r in binance.state.requests)

    unsynced = make_broker(
        binance,
        config_overrides={
            **binance.ccxt_overrides(),
            "options": {"fetchMarkets": {"types": ["spot"]}, "adjustForTimeDifference": False},
        },
    )
    with pytest.raises(TransientBrokerError, match="InvalidNonce"):
        unsynced.submit(market_buy("unsynced"))


def test_limit_order_rests_and_cancel_is_idempotent(binance: BinanceServer, broker: CcxtBroker) -> None:
    order = BrokerOrder(
        client_order_id="limit-1",
        symbol=SYMBOL,
        side="buy",
        type="limit",
        quantity=Decimal("0.01"),
        price=Decimal("45000"),
    )
    result = broker.submit(order)
    assert result.status == "open" and result.filled_quantity == 0
    assert binance.state.posts()[0].params["price"] == "45000"

    broker.cancel(client_order_id="limit-1", symbol=SYMBOL)
    assert binance.state.orders[0]["status"] == "CANCELED"
    cancel = binance.state.requests[-1]
    assert cancel.method == "DELETE" and cancel.params["origClientOrderId"] == "limit-1"
    # Already canceled, and never placed: both are fine.
    broker.cancel(client_order_id="limit-1", symbol=SYMBOL)
    broker.cancel(client_order_id="never-placed", symbol=SYMBOL)
    looked_up = broker.lookup(client_order_id="limit-1", symbol=SYMBOL)
    assert looked_up is not None and looked_up.status == "canceled"


def test_protective_orders_on_spot(binance: BinanceServer, broker: CcxtBroker) -> None:
    # The rule "on spot only the stop rests on the exchange" lives in trading.services
    # (_protective_place, tested in test_live_protective); here, what each order looks like on the wire.
    stop = broker.submit(
        BrokerOrder(
            client_order_id="ta-7-p3-sl",
            symbol=SYMBOL,
            side="sell",
            type="stop",
            quantity=Decimal("0.01"),
            price=Decimal("48000"),
            reduce_only=True,
        )
    )
    assert stop.status == "open"
    (post,) = binance.state.posts()
    assert post.params["newClientOrderId"] == "ta-7-p3-sl"
    assert (post.params["type"], post.params["side"], post.params["stopPrice"]) == ("STOP_LOSS", "SELL", "48000")
    assert "reduceOnly" not in post.params  # spot has no such flag

    broker.submit(
        BrokerOrder(
            client_order_id="ta-7-p4-tp",
            symbol=SYMBOL,
            side="sell",
            type="take_profit",
            quantity=Decimal("0.01"),
            price=Decimal("55000"),
            reduce_only=True,
        )
    )
    post = binance.state.posts()[-1]
    assert (post.params["type"], post.params["stopPrice"], post.params["newClientOrderId"]) == (
        "TAKE_PROFIT",
        "55000",
        "ta-7-p4-tp",
    )


def test_spot_orders_refuse_leverage_and_unknown_symbols(binance: BinanceServer, broker: CcxtBroker) -> None:
    levered = BrokerOrder(
        client_order_id="lev", symbol=SYMBOL, side="buy", type="market", quantity=Decimal("0.01"), leverage=Decimal(3)
    )
    with pytest.raises(PermanentBrokerError, match="spot market"):
        broker.submit(levered)
    with pytest.raises(PermanentBrokerError, match="no market"):
        broker.submit(
            BrokerOrder(client_order_id="x", symbol="DOGE/EUR", side="buy", type="market", quantity=Decimal(1))
        )
    assert binance.state.posts() == []


def test_lookup_by_scanning_orders(binance: BinanceServer) -> None:
    # Exchanges without a query by client id: the broker scans open and closed orders.
    broker = make_broker(binance, lookup_by_client_id=False)
    broker.submit(market_buy("scan-filled"))
    broker.submit(
        BrokerOrder(
            client_order_id="scan-open",
            symbol=SYMBOL,
            side="buy",
            type="limit",
            quantity=Decimal("0.01"),
            price=Decimal("40000"),
        )
    )
    filled = broker.lookup(client_order_id="scan-filled", symbol=SYMBOL)
    resting = broker.lookup(client_order_id="scan-open", symbol=SYMBOL)
    assert filled is not None and filled.status == "filled"
    assert resting is not None and resting.status == "open"
    assert broker.lookup(client_order_id="scan-missing", symbol=SYMBOL) is None
    assert {r.path for r in binance.state.requests} >= {"/api/v3/openOrders", "/api/v3/allOrders"}
    assert not any("origClientOrderId" in r.params for r in binance.state.requests)

    broker.cancel(client_order_id="scan-open", symbol=SYMBOL)
    assert binance.state.orders[1]["status"] == "CANCELED"
    assert binance.state.requests[-1].params["orderId"] == str(binance.state.orders[1]["orderId"])


def test_exchange_without_sandbox_refuses_testnet() -> None:
    with pytest.raises(PermanentBrokerError, match="no testnet"):
        CcxtBroker(exchange_id="kraken", api_key="k", secret="s", testnet=True)
    with pytest.raises(PermanentBrokerError, match="unknown exchange"):
        CcxtBroker(exchange_id="not-an-exchange", api_key="k", secret="s", testnet=True)


@pytest.mark.django_db
def test_broker_for_account_uses_the_decrypted_keys(binance: BinanceServer) -> None:
    account = ExchangeAccountFactory(exchange="binance", api_key=API_KEY, api_secret=SECRET, testnet=True)
    account.refresh_from_db()
    broker = broker_for_account(account, config_overrides=binance.ccxt_overrides())
    assert broker.submit(market_buy("from-account")).status == "filled"
    assert binance.state.posts()[0].api_key == API_KEY
    assert API_KEY not in repr(broker) and API_KEY not in repr(account)
    broker.close()


def test_keys_stay_out_of_logs_after_logging_is_configured_again(
    binance: BinanceServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Celery and Django re-run dictConfig at start-up; that must not re-enable ccxt's wire log.
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    caplog.set_level(logging.DEBUG)
    broker = make_broker(binance)
    assert broker.submit(market_buy("after-dictconfig")).status == "filled"
    assert API_KEY not in caplog.text
    assert binance.state.posts()[0].params["signature"] not in caplog.text
