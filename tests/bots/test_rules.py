"""One home for the bot rules: `bot_config_errors` gives any form every field error in one call,
with the same messages the API and the admin show."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bots.cycle import run_cycle
from bots.rules import NON_FIELD, bot_config_errors
from tests.factories import SLOT, BotFactory

pytestmark = pytest.mark.django_db

VALID = {
    "name": "rules",
    "provider": "baseline",
    "model": "buy_and_hold",
    "exchange": "coinbase",
    "symbols": ["BTC/USD"],
    "timeframe": "1h",
    "starting_capital": Decimal(10000),
}


def test_a_valid_new_configuration_has_no_errors():
    assert bot_config_errors(values=VALID, bot=None) == {}


def test_a_new_configuration_gets_every_field_error_at_once():
    errors = bot_config_errors(
        values={**VALID, "model": "moon_shot", "symbols": ["NOPE/USD"], "starting_capital": Decimal(50)},
        bot=None,
    )
    assert errors["model"] == ["Unknown baseline 'moon_shot'; choose one of: buy_and_hold, ema_rsi, hold."]
    assert errors["symbols"][0].startswith("Not offered on coinbase: NOPE/USD")
    assert errors["starting_capital"] == ["Ensure this value is greater than or equal to 100 (in USD)."]


def test_a_live_configuration_needs_an_account():
    errors = bot_config_errors(values={**VALID, "mode": "live", "exchange_account": None}, bot=None)
    assert errors == {"exchange_account": ["Live trading needs one of your exchange accounts."]}


def test_what_the_bots_state_forbids_is_a_non_field_error():
    bot = BotFactory(start=True)
    run_cycle(bot_id=bot.pk, slot=SLOT)
    bot.refresh_from_db()
    errors = bot_config_errors(values={"starting_capital": Decimal(500)}, bot=bot)
    assert errors == {NON_FIELD: ["starting_capital cannot change after the bot has run; create a new bot."]}
    # Checked against its current settings: an edit of the risk limits alone is fine.
    assert bot_config_errors(values={"max_leverage": Decimal(2)}, bot=bot) == {}
