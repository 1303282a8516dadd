"""The database guards of the trading books (core.append_only renders them as triggers).

What the services may still change, and what they never do:

- an order moves forward (`pending_submit` → `open`/`unknown` → `partially_filled` → `filled`,
  `canceled` or `rejected`); while it has not reached the exchange it may be repriced; once
  filled, canceled or rejected it is final; its identity (bot, client order id, market, side,
  type, cycle, time) never changes and its filled quantity never shrinks;
- a fill, an equity point and an adjustment are final when written;
- a position's opening (market, side, entry, size, margin, levels it was opened with, thesis,
  time) never changes; while open it may move its stop-loss and take-profit, record how far its
  exits were checked, and close; once closed it is final;
- a trading account's cash moves (the ledger check proves it agrees with the books) but the
  account of a bot that has books is never deleted.

None of these rows is ever deleted. Changing a rule here needs a migration that installs the
guards again (they are also installed after every `migrate`: trading.apps).
"""

from __future__ import annotations

from core.append_only import Guard, Rule

ORDER_FINAL = "('filled', 'canceled', 'rejected')"


def _order_rank(row: str) -> str:
    return (
        f"CASE {row}.status WHEN 'pending_submit' THEN 0 WHEN 'open' THEN 1 WHEN 'unknown' THEN 1 "
        f"WHEN 'partially_filled' THEN 2 ELSE 3 END"
    )


TRADING_GUARDS: tuple[Guard, ...] = (
    Guard(
        table="trading_order",
        delete_message="orders are books: they are never deleted",
        updates=(
            Rule(
                "an order's identity (bot, client order id, market, side, type, cycle, time) never changes",
                columns=(
                    "id",
                    "bot_id",
                    "client_order_id",
                    "symbol",
                    "side",
                    "type",
                    "reduce_only",
                    "cycle_id",
                    "created_at",
                ),
            ),
            Rule("a filled, canceled or rejected order is final", when=f"OLD.status IN {ORDER_FINAL}"),
            Rule("an order's status only moves forward", when=f"{_order_rank('NEW')} < {_order_rank('OLD')}"),
            Rule("an order's filled quantity never decreases", when="NEW.filled_quantity < OLD.filled_quantity"),
        ),
    ),
    Guard(
        table="trading_fill",
        delete_message="fills are books: they are never deleted",
        updates=(Rule("a fill is final: it is never changed"),),
    ),
    Guard(
        table="trading_position",
        delete_message="positions are books: they are never deleted",
        updates=(
            Rule(
                "a position's opening (market, side, entry, size, margin, leverage, thesis, time) never changes",
                columns=(
                    "id",
                    "bot_id",
                    "symbol",
                    "side",
                    "quantity",
                    "contract_size",
                    "entry_price",
                    "leverage",
                    "margin",
                    "liquidation_price",
                    "thesis",
                    "invalidation",
                    "confidence",
                    "opened_at",
                    "opened_cycle_id",
                ),
            ),
            Rule("a closed position is final", when="OLD.status = 'closed'"),
        ),
    ),
    Guard(
        table="trading_equitysnapshot",
        delete_message="equity points are books: they are never deleted",
        updates=(Rule("an equity point is final: it is never changed"),),
    ),
    Guard(
        table="trading_accountadjustment",
        delete_message="adjustments are books: a correction is undone by a new adjustment, never deleted",
        updates=(Rule("an adjustment is final: a correction is corrected by a new adjustment"),),
    ),
    Guard(
        table="trading_tradingaccount",
        delete_refused_when=(
            "EXISTS (SELECT 1 FROM trading_order WHERE bot_id = OLD.bot_id)"
            " OR EXISTS (SELECT 1 FROM trading_equitysnapshot WHERE bot_id = OLD.bot_id)"
            " OR EXISTS (SELECT 1 FROM trading_accountadjustment WHERE bot_id = OLD.bot_id)"
        ),
        delete_message="the account has books (orders, equity, adjustments): it is never deleted",
        updates=(Rule("an account's bot and owner never change", columns=("bot_id", "owner_id")),),
        reads=("trading_order", "trading_equitysnapshot", "trading_accountadjustment"),
        update_of=("bot_id", "owner_id"),
    ),
)
