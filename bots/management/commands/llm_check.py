"""`manage.py llm_check PROVIDER MODEL`: one real decision request to a configured provider.

Builds a decision context from current market data (the configured feed), a flat 10,000 USD
account and the default risk limits, asks the model, and prints the parsed decision, tokens,
cost and latency. Nothing is stored and no order is placed. A provider that is not configured,
unusable market data or an answer that could not be used end with a message and a non-zero exit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Field
from django.utils import timezone

from bots.decisions import AccountView, DecisionContext, RiskLimitsView
from bots.llm.exceptions import LLMNotConfigured
from bots.models import Bot
from bots.providers import PROVIDERS, decision_maker_class, ensure_configured
from bots.rules import quote_of
from trading.numbers import plain

FLAT_EQUITY = Decimal(10000)


def _default(name: str) -> Any:
    field = Bot._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_default()


def default_limits() -> RiskLimitsView:
    """The risk limits a new bot gets (the Bot model's field defaults)."""
    return RiskLimitsView(
        max_position_pct=Decimal(_default("max_position_pct")),
        max_leverage=Decimal(_default("max_leverage")),
        max_exposure_pct=Decimal(_default("max_exposure_pct")),
        max_trades_per_day=int(_default("max_trades_per_day")),
        daily_loss_limit_pct=Decimal(_default("daily_loss_limit_pct")),
        max_drawdown_pct=Decimal(_default("max_drawdown_pct")),
    )


class Command(BaseCommand):
    help = "Send one real decision prompt, built from current market data, to an LLM provider and print the result."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider", choices=PROVIDERS)
        parser.add_argument("model", help="the provider's model name, e.g. claude-sonnet-4-6 or gpt-5-mini")
        parser.add_argument("--exchange", default="coinbase", help="market data exchange (ccxt id); default coinbase")
        parser.add_argument("--symbols", default="BTC/USD", help="comma-separated ccxt symbols; default BTC/USD")
        parser.add_argument("--timeframe", default="1h", help="candle timeframe; default 1h")
        parser.add_argument("--show-prompt", action="store_true", help="print the full prompt too")

    def handle(self, *args: Any, **options: Any) -> None:
        provider: str = options["provider"]
        model: str = options["model"]
        symbols = [s.strip() for s in str(options["symbols"]).split(",") if s.strip()]
        if not symbols:
            raise CommandError("--symbols needs at least one symbol")
        try:
            ensure_configured(provider=provider, model=model)
        except LLMNotConfigured as exc:
            raise CommandError(str(exc)) from None

        from marketdata.exceptions import FeedError
        from marketdata.services import snapshot_build

        now = timezone.now()
        try:
            snapshot = snapshot_build(
                exchange=options["exchange"], symbols=symbols, timeframe=options["timeframe"], slot=now
            )
        except (FeedError, ValueError) as exc:
            raise CommandError(f"no market data for {', '.join(symbols)} on {options['exchange']}: {exc}") from None

        quote = quote_of(symbols[0]) if "/" in symbols[0] else "USD"
        ctx = DecisionContext(
            bot_id=0,
            bot_name="llm_check",
            symbols=sorted(snapshot.data.get("symbols", {}) or symbols),
            timeframe=options["timeframe"],
            snapshot=snapshot,
            account=AccountView(
                equity=FLAT_EQUITY,
                cash=FLAT_EQUITY,
                starting_capital=FLAT_EQUITY,
                return_pct=Decimal(0),
                sharpe=None,
                quote_currency=quote,
                trades_today=0,
            ),
            positions=[],
            limits=default_limits(),
            slot_iso=now.isoformat(),
        )
        maker = decision_maker_class(provider)(model=model, bot_id=None, llm_daily_budget=None, purpose="check")
        outcome = maker.decide(ctx)

        write = self.stdout.write
        if options["show_prompt"]:
            write(outcome.prompt)
            write("")
        write(f"{provider}/{model}  prompt {outcome.prompt_version}  snapshot {snapshot.hash[:12]}")
        write(
            f"market time {snapshot.market_time.isoformat()}  prices "
            + ", ".join(f"{s} {snapshot.price(s)}" for s in ctx.symbols if s in snapshot.markets)
        )
        for call in outcome.calls:
            status = "ok" if call.ok else f"error: {call.error}"
            write(
                f"call {call.purpose}: {status}, {call.attempts} attempt(s), {call.latency_ms} ms, "
                f"{call.input_tokens} in / {call.output_tokens} out tokens, {plain(call.cost)} USD"
            )
        write(
            f"total: {outcome.input_tokens} input tokens, {outcome.output_tokens} output tokens, "
            f"cost {plain(outcome.cost)} USD, latency {outcome.latency_ms} ms"
        )
        if outcome.skipped_reason:
            raise CommandError(f"no request made: {outcome.skipped_reason}")
        if outcome.error:
            if outcome.raw_output:
                write("raw answer:")
                write(outcome.raw_output)
            raise CommandError(f"the answer could not be used: {outcome.error}")
        write(self.style.SUCCESS("decision:"))
        write(f"  market summary: {outcome.decision.market_summary}")
        for action in outcome.decision.actions:
            write(
                f"  {action.symbol}: {action.action.value} size_pct={action.size_pct} leverage={action.leverage} "
                f"stop_loss={action.stop_loss} take_profit={action.take_profit} confidence={action.confidence}"
            )
            if action.invalidation:
                write(f"    invalidation: {action.invalidation}")
            if action.reasoning:
                write(f"    reasoning: {action.reasoning}")
