"""Bots API: CRUD and commands, cycles, performance, leaderboard. Thin: validate → service → serialize."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots import performance, selectors, services
from bots.api.filters import CycleFilter
from bots.api.serializers import (
    AnalyticsResponseSerializer,
    ArenaLineSerializer,
    BotSerializer,
    BotStartSerializer,
    CandleQuerySerializer,
    CandleSerializer,
    CatalogSerializer,
    CycleDetailSerializer,
    CycleListSerializer,
    LeaderboardSerializer,
    PerformanceSerializer,
    PeriodQuerySerializer,
    StopResultSerializer,
)
from bots.models import Bot, Cycle
from core.api import JSONErrors
from marketdata.exceptions import FeedError
from trading import selectors as trading_selectors
from trading.api.filters import RoundTripFilter
from trading.api.serializers import RoundTripSerializer
from trading.api.views import CSV_PARAMETER, ROUND_TRIP_RENDERERS, round_trips_response

logger = logging.getLogger(__name__)

PERIOD_PARAMETER = OpenApiParameter(
    "period", str, enum=["24h", "7d", "30d", "all"], default="all", description="the window measured"
)


class BotViewSet(JSONErrors, viewsets.ModelViewSet[Bot]):
    """Your bots. Create and edit the configuration; drive them with start, pause and stop."""

    serializer_class = BotSerializer
    filterset_fields = ["status", "provider", "mode"]
    # Set by the round-trips action (its filters are the round trips', not the bots').
    filterset_class: type[Any] | None = None

    def get_queryset(self) -> QuerySet[Any]:
        if self.action == "round_trips":
            # The action lists positions (its filters and schema are the round trips').
            return trading_selectors.positions_of(user=self.request.user)
        # The account's state (cash, marks) is serialized with the bot: joined, not a query per bot.
        bots = selectors.bots_of(user=self.request.user).select_related("account")
        return selectors.with_market_time(bots).order_by("name", "pk")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["accounts"] = getattr(self, "_accounts", {})
        return context

    def _marked(self, bots: list[Bot]) -> None:
        # Equity and PnL marked to the latest prices, for every bot on the page in one batch.
        self._accounts = selectors.bot_accounts(bots=bots)

    def _respond(self, bot: Bot, *, status_code: int = status.HTTP_200_OK) -> Response:
        bot = self.get_queryset().get(pk=bot.pk)
        self._marked([bot])
        return Response(self.get_serializer(bot).data, status=status_code)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        bots = list(page) if page is not None else list(queryset)
        self._marked(bots)
        data = self.get_serializer(bots, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._respond(self.get_object())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        bot = services.bot_create(owner=request.user, data=serializer.validated_data)  # type: ignore[arg-type]
        logger.info("user %s created bot %s", request.user.pk, bot.pk)
        return self._respond(bot, status_code=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        bot = self.get_object()
        serializer = self.get_serializer(bot, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        bot = services.bot_update(bot=bot, data=serializer.validated_data)
        return self._respond(bot)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.bot_delete(bot=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=BotStartSerializer, responses={200: BotSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Activate the bot: its first cycle runs within one dispatcher tick."""
        bot = self.get_object()
        command = BotStartSerializer(data=request.data)
        command.is_valid(raise_exception=True)
        bot = services.bot_start(bot=bot, confirm_live=command.validated_data["confirm_live"])
        return self._respond(bot)

    @extend_schema(request=None, responses={200: BotSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """No new decisions; open positions keep their stop-loss and take-profit."""
        bot = services.bot_pause(bot=self.get_object())
        return self._respond(bot)

    @extend_schema(request=None, responses={200: StopResultSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        """Stop for good: cancel open orders and close every position at market (no LLM involved)."""
        bot = self.get_object()
        result = services.bot_stop(bot=bot)
        bot = self.get_queryset().get(pk=bot.pk)
        self._marked([bot])
        return Response(
            {
                "bot": self.get_serializer(bot).data,
                "closed_positions": result.closed_positions,
                "realized_pnl": str(result.realized_pnl),
                "canceled_orders": result.canceled_orders,
            }
        )

    @extend_schema(parameters=[PERIOD_PARAMETER], responses={200: PerformanceSerializer})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def performance(self, request: Request, pk: str | None = None) -> Response:
        """The bot over the period's window: equity on the market-time grid, PnL, fees, the LLM
        bill (USD and converted), net return and Sharpe with 95 % intervals, max drawdown, and
        the excess return over buy-and-hold of its symbols."""
        bot = self.get_object()
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        figures = performance.bot_performance(bot=bot, period=query.validated_data["period"])
        return Response(PerformanceSerializer(figures).data)

    @extend_schema(parameters=[CSV_PARAMETER], responses={200: RoundTripSerializer(many=True)})
    @action(
        detail=True,
        methods=["get"],
        url_path="round-trips",
        filterset_class=RoundTripFilter,
        renderer_classes=ROUND_TRIP_RENDERERS,
    )
    def round_trips(self, request: Request, pk: str | None = None) -> Response:
        """The bot's round trips (completed trades), newest close first; `?format=csv` exports them."""
        bot = get_object_or_404(selectors.bots_of(user=request.user), pk=pk)
        return round_trips_response(
            self,  # type: ignore[arg-type]
            self.get_queryset().filter(bot=bot),
            filename=f"round-trips-bot-{bot.pk}.csv",
        )

    @extend_schema(parameters=[CandleQuerySerializer], responses={200: CandleSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def candles(self, request: Request, pk: str | None = None) -> Response:
        """Candles of one of the bot's markets up to the market time of its latest cycle."""
        bot = self.get_object()
        query = CandleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        symbol = query.validated_data.get("symbol") or (bot.symbols[0] if bot.symbols else "")
        if symbol not in bot.symbols:
            raise serializers.ValidationError({"symbol": [f"The bot trades {', '.join(bot.symbols)}, not {symbol!r}."]})
        candles = selectors.candles_for(bot=bot, symbol=symbol, limit=query.validated_data["limit"])
        return Response(CandleSerializer(candles, many=True).data)


class CycleViewSet(viewsets.ReadOnlyModelViewSet[Cycle]):
    """Your bots' cycles, newest first; a cycle's detail holds everything it saw, said and did."""

    filterset_class = CycleFilter

    def get_queryset(self) -> QuerySet[Cycle]:
        queryset = selectors.cycles_of(user=self.request.user).order_by("-slot", "-pk")
        if self.action == "list":
            # The timeline needs the decision, not the snapshot, the prompt or the raw answer.
            return queryset.defer("snapshot", "prompt", "raw_output", "risk")
        return queryset.prefetch_related("orders", "llm_calls")

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Cycle]]:
        return CycleDetailSerializer if self.action == "retrieve" else CycleListSerializer


class LeaderboardView(APIView):
    """Your bots ranked by net return (after fees and the LLM bill) over one market-time window,
    rule baselines included: Sharpe and net return with 95 % bootstrap intervals, max drawdown,
    excess return over buy-and-hold; per bot and per model. Bots that never completed a trading
    cycle are listed apart (`not_started`)."""

    @extend_schema(parameters=[PERIOD_PARAMETER], responses={200: LeaderboardSerializer})
    def get(self, request: Request) -> Response:
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        board = performance.leaderboard(user=request.user, period=query.validated_data["period"])
        return Response(LeaderboardSerializer(board).data)


class AnalyticsView(APIView):
    """Per bot and per model: win rate, holding times, long/short mix, leverage, confidence,
    biggest win and loss, fees against gross PnL, decisions, invalid outputs, LLM cost per
    decision and per round trip."""

    @extend_schema(parameters=[PERIOD_PARAMETER], responses={200: AnalyticsResponseSerializer})
    def get(self, request: Request) -> Response:
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = query.validated_data["period"]
        bots, models = performance.analytics(user=request.user, period=period)
        return Response(AnalyticsResponseSerializer({"period": period, "bots": bots, "models": models}).data)


class ArenaView(APIView):
    """Every started bot's account value as % return over the window, on market time elapsed
    since the window began (the arena chart)."""

    @extend_schema(parameters=[PERIOD_PARAMETER], responses={200: ArenaLineSerializer(many=True)})
    def get(self, request: Request) -> Response:
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        lines = performance.arena(user=request.user, period=query.validated_data["period"])
        return Response(ArenaLineSerializer(lines, many=True).data)


class CatalogView(APIView):
    """What a bot can be configured with: providers and models, baselines, and the offered markets."""

    @extend_schema(responses={200: CatalogSerializer})
    def get(self, request: Request) -> Response:
        from bots.providers import BASELINE, PROVIDERS, baseline_names, known_models
        from marketdata.services import available_symbols

        try:
            markets = available_symbols()
        except FeedError as exc:
            logger.warning("market list unavailable: %s", exc)
            markets = {}
        providers: dict[str, list[str] | None] = {BASELINE: baseline_names()}
        for provider in PROVIDERS:
            providers[provider] = known_models(provider)
        return Response({"providers": providers, "baselines": baseline_names(), "markets": markets})
