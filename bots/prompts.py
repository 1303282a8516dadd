"""The decision prompt: an Alpha Arena style brief of the market, the account and the rules.

The prompt is versioned (`PROMPT_VERSION`, recorded on every cycle with the full text). Its
market section is built only from the snapshot's JSON-ready `data` with a fixed order, so every
bot trading the same symbols in the same slot (same snapshot hash) gets it byte for byte: models
are compared on identical input. Everything bot-specific (account, positions, limits) comes after.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from bots.decisions import Action, DecisionContext, PositionView
from marketdata.indicators import INDICATOR_KEYS
from trading.numbers import plain

# -2: account and position amounts as plain numbers (`3050`, not the stored `3050.000000000000`),
# at most 8 decimals.
PROMPT_VERSION = "arena-2026.11-2"

# Fixed orders, so the text depends on the values only, not on dict ordering.
INDICATOR_ORDER = INDICATOR_KEYS  # the snapshot's own order
SERIES_ORDER = ("close", "ema20", "rsi7", "rsi14", "macd", "volume")

NA = "n/a"


def _value(value: Any) -> str:
    if value is None:
        return NA
    return str(value)


def _ordered(keys: Any, order: tuple[str, ...]) -> list[str]:
    present = list(keys)
    return [k for k in order if k in present] + sorted(k for k in present if k not in order)


def _indicators_line(indicators: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_value(indicators[name])}" for name in _ordered(indicators, INDICATOR_ORDER))


def _series_lines(series: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for name in _ordered(series, SERIES_ORDER):
        values = series[name] or []
        lines.append(f"{indent}{name}: [{', '.join(_value(v) for v in values)}]")
    return lines


def market_section(snapshot_data: dict[str, Any]) -> str:
    """The market part of the prompt, a pure function of the snapshot's `data`."""
    order = snapshot_data.get("series_order", "oldest_to_newest")
    order_text = "OLDEST -> NEWEST" if order == "oldest_to_newest" else str(order).upper()
    timeframe = _value(snapshot_data.get("timeframe"))
    lines = [
        "=== MARKET ===",
        f"Exchange: {_value(snapshot_data.get('exchange'))}. Timeframe: {timeframe}. "
        f"Market time (open of the latest closed candle, UTC): {_value(snapshot_data.get('market_time'))}.",
        f"ALL SERIES BELOW ARE ORDERED {order_text}: the last value of each list is the most recent.",
        "A value of n/a means not enough history to compute it.",
    ]
    symbols: dict[str, Any] = snapshot_data.get("symbols") or {}
    for symbol in sorted(symbols):
        market = symbols[symbol] or {}
        lines.append("")
        lines.append(f"--- {symbol} ---")
        lines.append(
            f"current_price={_value(market.get('price'))}, candle_time={_value(market.get('market_time'))}, "
            f"funding_rate={_value(market.get('funding_rate'))}"
        )
        indicators = market.get("indicators") or {}
        if indicators:
            lines.append(f"Current indicators ({timeframe}): {_indicators_line(indicators)}")
        series = market.get("series") or {}
        if series:
            lines.append(f"Recent {timeframe} series ({order_text}):")
            lines.extend(_series_lines(series, "  "))
        higher = market.get("higher_timeframe") or {}
        if higher:
            htf = _value(higher.get("timeframe"))
            lines.append(f"Higher timeframe context ({htf}):")
            if higher.get("indicators"):
                lines.append(f"  indicators: {_indicators_line(higher['indicators'])}")
            if higher.get("series"):
                lines.append(f"  series ({order_text}):")
                lines.extend(_series_lines(higher["series"], "    "))
    return "\n".join(lines)


def _pct(value: Decimal) -> str:
    return f"{plain(value, places=4)}%"


def _amount(value: Decimal | None) -> str:
    """An account or position amount: plain digits, at most 8 decimals (a satoshi)."""
    return NA if value is None else plain(value, places=8)


def _position_lines(position: PositionView, price: str) -> list[str]:
    return [
        f"- {position.symbol}: {position.side.upper()} quantity={_amount(position.quantity)} "
        f"entry_price={_amount(position.entry_price)} current_price={price} "
        f"leverage={_amount(position.leverage)}x margin={_amount(position.margin)} "
        f"unrealized_pnl={_amount(position.unrealized_pnl)} liquidation_price={_amount(position.liquidation_price)} "
        f"opened_at={position.opened_at}",
        f"  exit plan: stop_loss={_amount(position.stop_loss)} take_profit={_amount(position.take_profit)}",
        f"  thesis when opened: {position.thesis or NA}",
        f"  invalidation condition: {position.invalidation or NA}",
    ]


def account_section(ctx: DecisionContext) -> str:
    account = ctx.account
    lines = [
        "=== YOUR ACCOUNT ===",
        f"Equity: {_amount(account.equity)} {account.quote_currency}. "
        f"Free cash: {_amount(account.cash)} {account.quote_currency}. "
        f"Starting capital: {_amount(account.starting_capital)} {account.quote_currency}.",
        f"Return so far: {_pct(account.return_pct)}. Sharpe ratio so far: {_value(account.sharpe)}.",
        f"Opening trades today: {account.trades_today} of {ctx.limits.max_trades_per_day} allowed.",
        "",
        "=== OPEN POSITIONS ===",
    ]
    if not ctx.positions:
        lines.append("None.")
    prices = (ctx.snapshot.data or {}).get("symbols", {}) if ctx.snapshot is not None else {}
    for position in ctx.positions:
        lines.extend(_position_lines(position, _value((prices.get(position.symbol) or {}).get("price"))))
    return "\n".join(lines)


def decision_json_schema(symbols: list[str]) -> dict[str, Any]:
    """The strict JSON schema of `Decision` for these symbols (OpenAI strict mode dialect).

    Every property is required and nullable ones are `["number", "null"]`, as strict mode wants;
    ranges are stated in descriptions (not every provider accepts numeric keywords) and enforced
    by `validate_decision` on the answer. `reasoning` comes before `action` because models write
    the properties in order: the reasoning then leads to the action instead of justifying it.
    """
    action_properties: dict[str, Any] = {
        "symbol": {"type": "string", "enum": list(symbols), "description": "one of the symbols you trade"},
        "reasoning": {"type": "string", "description": "your analysis of this symbol, at most 8000 characters"},
        "action": {
            "type": "string",
            "enum": [a.value for a in Action],
            "description": "open_long, open_short, close (the open position), or hold",
        },
        "size_pct": {
            "type": "number",
            "description": "margin to commit, as % of equity, 0..100 (0 unless opening)",
        },
        "leverage": {"type": "number", "description": "1..125, at most your max leverage (1 unless opening)"},
        "stop_loss": {
            "type": ["number", "null"],
            "description": "stop price: below the current price for a long, above it for a short; null if none",
        },
        "take_profit": {
            "type": ["number", "null"],
            "description": "target price: above the current price for a long, below it for a short; null if none",
        },
        "confidence": {"type": "number", "description": "0..1"},
        "invalidation": {
            "type": "string",
            "description": "the observable condition that would prove this trade's thesis wrong",
        },
    }
    return {
        "type": "object",
        "properties": {
            "market_summary": {"type": "string", "description": "your read of the market this cycle"},
            "actions": {
                "type": "array",
                "description": "exactly one entry per symbol",
                "items": {
                    "type": "object",
                    "properties": action_properties,
                    "required": list(action_properties),
                    "additionalProperties": False,
                },
            },
        },
        "required": ["market_summary", "actions"],
        "additionalProperties": False,
    }


def _any_of_nullable(node: Any) -> Any:
    """Rewrite `"type": [T, "null"]` as `anyOf` for dialects that want one type per schema."""
    if isinstance(node, dict):
        out = {k: _any_of_nullable(v) for k, v in node.items()}
        kind = out.get("type")
        if isinstance(kind, list):
            description = out.pop("description", None)
            out.pop("type")
            out["anyOf"] = [{"type": t} for t in kind]
            if description is not None:
                out["description"] = description
        return out
    if isinstance(node, list):
        return [_any_of_nullable(v) for v in node]
    return node


def anthropic_json_schema(symbols: list[str]) -> dict[str, Any]:
    """The schema in the dialect of Anthropic structured outputs and tool input schemas."""
    return _any_of_nullable(decision_json_schema(symbols))  # type: ignore[no-any-return]


def gemini_json_schema(symbols: list[str]) -> dict[str, Any]:
    """The schema for Gemini's `response_json_schema` (with a stable property order)."""
    schema: dict[str, Any] = _any_of_nullable(decision_json_schema(symbols))
    item = schema["properties"]["actions"]["items"]
    # Gemini writes properties in this order (otherwise alphabetical).
    item["propertyOrdering"] = list(item["properties"])
    schema["propertyOrdering"] = list(schema["properties"])
    return schema


def _example(symbols: list[str]) -> str:
    first = symbols[0] if symbols else "BTC/USD"
    example = {
        "market_summary": "One paragraph on the market as a whole.",
        "actions": [
            {
                "symbol": first,
                "reasoning": "Why, from the data above.",
                "action": "hold",
                "size_pct": 0,
                "leverage": 1,
                "stop_loss": None,
                "take_profit": None,
                "confidence": 0.5,
                "invalidation": "",
            }
        ],
    }
    return json.dumps(example, indent=2)


def rules_section(ctx: DecisionContext) -> str:
    limits = ctx.limits
    held = sorted({p.symbol for p in ctx.positions})
    lines = [
        "=== RULES ===",
        f"You trade only these symbols: {', '.join(ctx.symbols)}. Give exactly one action per symbol.",
        "Allowed actions:",
        "- open_long / open_short: open a new position; set size_pct (> 0), leverage, stop_loss, take_profit, "
        "confidence and invalidation.",
        "- close: close the open position of that symbol at market.",
        "- hold: do nothing (an open position keeps its stop_loss and take_profit).",
        "No adding to, flipping or resizing an open position: a symbol with an open position can only be "
        "close or hold." + (f" Open now: {', '.join(held)}." if held else ""),
        f"Risk limits of this account (enforced by the risk manager; orders beyond them are clamped or rejected): "
        f"margin per position at most {_pct(limits.max_position_pct)} of equity; leverage at most "
        f"{limits.max_leverage}x; total notional of open positions at most {_pct(limits.max_exposure_pct)} of "
        f"equity; at most {limits.max_trades_per_day} opening trades per UTC day; the bot pauses after a "
        f"{_pct(limits.daily_loss_limit_pct)} daily loss or a {_pct(limits.max_drawdown_pct)} drawdown from peak.",
        "Stops: a long's stop_loss is below the current price and its take_profit above; a short's the reverse. "
        "An answer with a stop or target on the wrong side is rejected.",
        "Prices and sizes are plain JSON numbers (no strings, no units, no thousands separators).",
    ]
    return "\n".join(lines)


def output_section(ctx: DecisionContext) -> str:
    schema = json.dumps(decision_json_schema(ctx.symbols), indent=2)
    return "\n".join(
        [
            "=== OUTPUT FORMAT ===",
            "Answer with ONE JSON object and nothing else (no prose, no code fences). It must match this JSON schema:",
            schema,
            "Example of the shape (not advice):",
            _example(ctx.symbols),
        ]
    )


SYSTEM_INTRO = (
    "You are an autonomous trading agent managing a crypto trading account. Each cycle you receive the "
    "market data of your symbols, your account and your open positions, and you decide one action per "
    "symbol. Your goal is to maximise risk-adjusted return (Sharpe ratio): trade when the data gives you "
    "an edge, hold otherwise, and always define how a trade exits (stop_loss, take_profit) and what would "
    "invalidate it. Fees and slippage are charged on every fill."
)


def build_prompt(ctx: DecisionContext) -> tuple[str, str]:
    """(system, user) prompts for one decision. The market section is shared byte for byte."""
    system = "\n\n".join([SYSTEM_INTRO, rules_section(ctx), output_section(ctx)])
    user = "\n\n".join(
        [
            f"Cycle slot: {ctx.slot_iso}. Bot: {ctx.bot_name}.",
            market_section(ctx.snapshot.data if ctx.snapshot is not None else {}),
            account_section(ctx),
            "Decide now. Answer with the JSON object only.",
        ]
    )
    return system, user


def full_prompt(system: str, user: str) -> str:
    """The prompt as recorded on the cycle: both parts, labelled."""
    return f"[system]\n{system}\n\n[user]\n{user}"
