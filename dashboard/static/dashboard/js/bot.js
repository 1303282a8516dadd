// A bot's page: price chart with its entries and exits, equity curve, figures with their 95 %
// intervals, open positions, round trips (with the thesis and why they closed) and the cycle
// timeline with the model's reasoning; live over the bot's stream.
import { CandlestickSeries, ColorType, LineSeries, createChart, createSeriesMarkers } from "lightweight-charts";
import { Stream } from "./stream.js";
import {
  alertToast, api, applyStatus, bumpUnread, debounce, el, fillToast, fmt, fmtMoney, fmtPct, fmtPrice, fmtQty, fmtTime,
  moneyDecimals, priceDecimals, results, setStatusBadge, signClass, wireControls,
} from "./ui.js";

const root = document.getElementById("bot");
const botId = Number(root.dataset.botId);
const startingCapital = Number(root.dataset.startingCapital);
const quote = root.dataset.quote;
const botName = root.querySelector("h1").firstChild.textContent.trim();
const symbolSelect = document.getElementById("symbol-select");
const periodSelect = document.getElementById("period-select");
const MAX_TIMELINE = 50;
const MAX_TRADES = 100;

// Each market's price decimals: from the server (its last close), else from its first candles.
const marketDecimals = new Map(
  [...symbolSelect.options].filter((o) => o.dataset.priceDecimals).map((o) => [o.value, Number(o.dataset.priceDecimals)]),
);
const decimalsOf = (symbol) => marketDecimals.get(symbol); // undefined: each price by its own size
const priceFormat = (decimals) => ({ type: "price", precision: decimals, minMove: Number((10 ** -decimals).toFixed(decimals)) });

// "No data yet" over a chart until it has a point.
function showPlaceholder(id, empty, text = "No data yet") {
  const placeholder = document.getElementById(id);
  placeholder.textContent = text;
  placeholder.hidden = !empty;
}

// --- charts -----------------------------------------------------------------------------------

const chartOptions = {
  layout: { background: { type: ColorType.Solid, color: "#171d24" }, textColor: "#9aa7b6" },
  grid: { vertLines: { color: "#1f2730" }, horzLines: { color: "#1f2730" } },
  timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#26303b" },
  rightPriceScale: { borderColor: "#26303b" },
  autoSize: true,
};
const priceChart = createChart(document.getElementById("price-chart"), chartOptions);
const candleSeries = priceChart.addSeries(CandlestickSeries, {
  upColor: "#22c55e", downColor: "#ef4444", borderVisible: false, wickUpColor: "#22c55e", wickDownColor: "#ef4444",
  // The default (2 decimals) shows ETH/BTC at 0.03 as a flat line.
  ...(decimalsOf(symbolSelect.value) === undefined ? {} : { priceFormat: priceFormat(decimalsOf(symbolSelect.value)) }),
});
const markers = createSeriesMarkers(candleSeries, []);
const equityChart = createChart(document.getElementById("equity-chart"), {
  ...chartOptions, timeScale: { ...chartOptions.timeScale, secondsVisible: true },
});
const equitySeries = equityChart.addSeries(LineSeries, {
  color: "#3b82f6", lineWidth: 2, priceFormat: priceFormat(moneyDecimals(quote)),
});

const seconds = (iso) => Math.floor(new Date(iso).getTime() / 1000);
let candleTimes = [];
let fills = []; // newest first, as the API lists them
const intents = new Map(); // order id → intent (the fill event does not carry it)

function candleTimeFor(fill) {
  if (fill.market_time) return seconds(fill.market_time);
  // No market time recorded: the last candle at or before the fill.
  const at = seconds(fill.created_at);
  let best = candleTimes[candleTimes.length - 1];
  for (const time of candleTimes) if (time <= at) best = time;
  return best;
}

function renderMarkers() {
  const symbol = symbolSelect.value;
  const known = new Set(candleTimes);
  const list = fills
    .filter((fill) => fill.symbol === symbol)
    .map((fill) => {
      const intent = fill.intent ?? intents.get(fill.order) ?? "";
      const buy = fill.side === "buy";
      const entry = intent === "open";
      return {
        time: candleTimeFor(fill),
        position: buy ? "belowBar" : "aboveBar",
        color: buy ? "#22c55e" : "#ef4444",
        shape: entry ? (buy ? "arrowUp" : "arrowDown") : "circle",
        text: entry ? (buy ? "Long" : "Short") : `Exit${intent && intent !== "close" ? ` (${intent.replace("_", " ")})` : ""}`,
      };
    })
    .filter((marker) => known.has(marker.time))
    .sort((a, b) => a.time - b.time);
  markers.setMarkers(list);
}

async function loadCandles() {
  const symbol = symbolSelect.value;
  const candles = await api(`/api/bots/${botId}/candles/?symbol=${encodeURIComponent(symbol)}&limit=300`);
  const data = candles.map((c) => ({
    time: seconds(c.time), open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close),
  }));
  if (data.length && !marketDecimals.has(symbol)) marketDecimals.set(symbol, priceDecimals(data.at(-1).close));
  if (marketDecimals.has(symbol)) candleSeries.applyOptions({ priceFormat: priceFormat(marketDecimals.get(symbol)) });
  candleTimes = data.map((d) => d.time);
  candleSeries.setData(data);
  showPlaceholder("price-chart-empty", !data.length);
  renderMarkers();
}

function equityPoints(series) {
  const byTime = new Map();
  for (const point of series) byTime.set(seconds(point.time), Number(point.equity));
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time, value }));
}

let lastEquityTime = 0;
function appendEquity(time, value) {
  const t = seconds(time);
  if (t < lastEquityTime) return;
  equitySeries.update({ time: t, value: Number(value) });
  lastEquityTime = t;
  showPlaceholder("equity-chart-empty", false);
}

// --- figures -------------------------------------------------------------------------------------

function stat(name) {
  return document.querySelector(`[data-stat="${name}"]`);
}

function showEquity(equity) {
  stat("equity").textContent = fmtMoney(equity, quote);
  const pnl = Number(equity) - startingCapital;
  stat("pnl").textContent = fmtMoney(pnl, quote);
  signClass(stat("pnl"), pnl);
}

function interval(ci, format) {
  return ci ? `95 %: ${format(ci[0])} … ${format(ci[1])}` : "";
}

async function loadPerformance() {
  const p = await api(`/api/bots/${botId}/performance/?period=${periodSelect.value}`);
  showEquity(p.equity);
  stat("return_pct").textContent = fmtPct(p.return_pct);
  signClass(stat("return_pct"), p.return_pct);
  stat("net_return_pct").textContent = fmtPct(p.net_return_pct);
  signClass(stat("net_return_pct"), p.net_return_pct);
  stat("net_return_ci").textContent = interval(p.net_return_ci, (v) => fmtPct(v));
  stat("net_pnl").textContent = fmtMoney(p.net_pnl, quote);
  signClass(stat("net_pnl"), p.net_pnl);
  stat("fees").textContent = fmtMoney(p.fees, quote);
  stat("llm_cost").textContent = `$${fmt(p.llm_cost, 4)}`; // dollars, in fractions of a cent per call
  stat("llm_cost_quote").textContent = quote === "USD" ? "" : p.llm_cost_quote === null ? `no ${quote} rate` : `${fmt(p.llm_cost_quote, 8)} ${quote}`;
  stat("win_rate").textContent = fmtPct(p.win_rate, 1);
  stat("trades").textContent = p.trades;
  stat("max_drawdown_pct").textContent = fmtPct(p.max_drawdown_pct);
  stat("periods").textContent = p.grid ? `${p.periods} periods of ${p.grid} (market time)` : "";
  stat("sharpe").textContent = p.sharpe === null ? "–" : fmt(p.sharpe);
  stat("sharpe_ci").textContent = p.sharpe === null ? `from ${30} periods (${p.periods} so far)` : interval(p.sharpe_ci, (v) => fmt(v));
  stat("excess").textContent = fmtPct(p.excess_return_vs_buy_and_hold_pct);
  signClass(stat("excess"), p.excess_return_vs_buy_and_hold_pct);
  stat("verdict").textContent = [interval(p.excess_return_ci, (v) => fmtPct(v)), p.verdict].filter(Boolean).join(" · ");
  const points = equityPoints(p.equity_series);
  equitySeries.setData(points);
  lastEquityTime = points.length ? points[points.length - 1].time : 0;
  showPlaceholder("equity-chart-empty", !points.length, periodSelect.value === "all" ? "No data yet" : "No data in this period");
  equityChart.timeScale().fitContent();
}

// --- positions and trades ------------------------------------------------------------------------

function emptyRow(tbody, text, span) {
  tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: span, class: "muted" }, text)));
}

async function loadPositions() {
  const positions = results(await api(`/api/positions/?bot=${botId}&page_size=100`));
  const tbody = document.querySelector("#positions-table tbody");
  if (!positions.length) return emptyRow(tbody, "No open position.", 7);
  tbody.replaceChildren(
    ...positions.map((p) => {
      const upnl = el("td", { class: "num" }, fmtMoney(p.unrealized_pnl, quote));
      signClass(upnl, p.unrealized_pnl);
      const decimals = decimalsOf(p.symbol);
      return el("tr", { dataset: { positionId: p.id } },
        el("td", {}, p.symbol), el("td", { class: p.side === "long" ? "pos" : "neg" }, `${p.side} ${fmt(p.leverage, 0)}×`),
        el("td", { class: "num" }, fmtQty(p.quantity)), el("td", { class: "num" }, fmtPrice(p.entry_price, decimals)),
        el("td", { class: "num" }, fmtPrice(p.price, decimals)), upnl,
        el("td", { class: "num" }, `${fmtPrice(p.stop_loss, decimals)} / ${fmtPrice(p.take_profit, decimals)}`));
    }),
  );
}

const EXIT_LABELS = { signal: "signal", stop_loss: "stop-loss", take_profit: "take-profit", liquidation: "liquidation", stop_command: "stop command", breaker: "breaker", manual: "manual" };

function heldFor(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m`;
}

function roundTripRow(t) {
  const decimals = decimalsOf(t.symbol);
  const net = el("td", { class: "num" }, fmtMoney(t.net_pnl, quote), t.return_pct === null ? null : el("span", { class: "muted" }, ` ${fmtPct(t.return_pct, 1)}`));
  signClass(net, t.net_pnl);
  return el("tr", { dataset: { positionId: t.position_id } },
    el("td", {}, fmtTime(t.closed_at)), el("td", {}, t.symbol),
    el("td", { class: t.side === "long" ? "pos" : "neg" }, `${t.side} ${fmt(t.leverage, 0)}×`),
    el("td", { class: "num" }, fmtQty(t.quantity)),
    el("td", { class: "num" }, `${fmtPrice(t.entry_price, decimals)} → ${fmtPrice(t.exit_price, decimals)}`),
    el("td", { class: "num", title: `wall clock ${heldFor(t.holding_seconds)}` }, heldFor(t.holding_market_seconds ?? t.holding_seconds)),
    net,
    el("td", { dataset: { field: "exit_reason" } }, EXIT_LABELS[t.exit_reason] ?? t.exit_reason),
    el("td", { class: "thesis", title: t.invalidation ? `Invalidation: ${t.invalidation}` : "" }, t.thesis || "–"));
}

async function loadRoundTrips() {
  const trips = results(await api(`/api/bots/${botId}/round-trips/?page_size=${MAX_TRADES}`));
  const tbody = document.querySelector("#round-trips-table tbody");
  if (!trips.length) emptyRow(tbody, "No closed trade yet.", 9);
  else tbody.replaceChildren(...trips.map(roundTripRow));
}

// The fills mark entries and exits on the price chart.
async function loadTrades() {
  fills = results(await api(`/api/fills/?bot=${botId}&page_size=500`));
  renderMarkers();
}

function addTrade(fill) {
  if (fills.some((f) => f.id === fill.id)) return;
  fills.unshift(fill);
  // A fill on a candle the chart does not show yet (a stop between cycles): fetch it first.
  if (fill.symbol === symbolSelect.value && fill.market_time && seconds(fill.market_time) > (candleTimes.at(-1) ?? 0)) {
    refreshCandles();
  } else {
    renderMarkers();
  }
}

// --- cycle timeline ------------------------------------------------------------------------------

function cycleItem(cycle) {
  const failed = cycle.status === "failed";
  const head = el("div", { class: "head" },
    el("strong", {}, fmtTime(cycle.slot)),
    el("span", { class: `status status-${cycle.status === "completed" ? "active" : failed ? "stopped" : "paused"}` }, cycle.status),
    cycle.kind === "protect" ? el("span", { class: "tag" }, "protect only") : null,
    cycle.llm_cost && Number(cycle.llm_cost) > 0 ? el("span", { class: "muted" }, `LLM $${fmt(cycle.llm_cost, 4)}`) : null,
    cycle.market_time ? el("span", { class: "muted" }, `market ${fmtTime(cycle.market_time)}`) : null);
  const actions = (cycle.actions ?? []).map((a) =>
    el("div", { class: "action" },
      el("span", { class: `act ${a.action}` }, (a.action ?? "").replace("_", " ")), " ",
      el("strong", {}, a.symbol), " ",
      a.confidence !== null && a.confidence !== undefined ? el("span", { class: "muted" }, `confidence ${fmt(a.confidence, 2)} `) : null,
      a.reasoning ? el("span", {}, `— ${a.reasoning}`) : null));
  const details = el("details", { dataset: { cycleId: cycle.id } }, el("summary", {}, "Full prompt, response and outcome"));
  details.addEventListener("toggle", () => details.open && loadCycleDetail(details), { once: false });
  return el("li", { class: cycle.status, dataset: { cycleId: cycle.id } },
    head,
    cycle.market_summary ? el("p", { class: "summary" }, cycle.market_summary) : null,
    actions,
    cycle.decision_error ? el("p", { class: "error" }, `Output rejected: ${cycle.decision_error}`) : null,
    cycle.error ? el("p", { class: "error" }, cycle.error) : null,
    details);
}

async function loadCycleDetail(details) {
  if (details.dataset.loaded) return;
  details.dataset.loaded = "1";
  const c = await api(`/api/cycles/${details.dataset.cycleId}/`);
  const block = (title, text) => (text ? [el("h3", {}, title), el("pre", {}, text)] : []);
  const json = (value) => (value ? JSON.stringify(value, null, 2) : "");
  const orders = (c.orders ?? []).map((o) =>
    `${o.intent} ${o.side} ${fmtQty(o.quantity)} ${o.symbol} → ${o.status}` +
    `${o.average_price ? ` @ ${fmtPrice(o.average_price, decimalsOf(o.symbol))}` : ""}${o.error ? ` (${o.error})` : ""}`);
  details.append(
    el("p", { class: "muted" },
      `tokens in ${c.input_tokens} / out ${c.output_tokens} · cost $${fmt(c.llm_cost, 6)} · latency ${c.llm_latency_ms} ms · ` +
      `timings ${Object.entries(c.timings ?? {}).map(([k, v]) => `${k} ${v} ms`).join(", ")} · prompt ${c.prompt_version || "–"} · snapshot ${c.snapshot_hash.slice(0, 12)}`),
    ...block("Prompt", c.prompt),
    ...block("Response", c.raw_output),
    ...block("Parsed decision", json(c.decision)),
    ...block("Risk outcome", json(c.risk)),
    ...block("Orders", orders.join("\n")),
    ...block("Market snapshot", json(c.snapshot)),
  );
}

function showCycle(cycle) {
  const timeline = document.getElementById("timeline");
  timeline.querySelector("li.empty")?.remove();
  const item = cycleItem(cycle);
  const existing = timeline.querySelector(`:scope > li[data-cycle-id="${cycle.id}"]`);
  if (existing) existing.replaceWith(item);
  else timeline.prepend(item);
  while (timeline.children.length > MAX_TIMELINE) timeline.lastElementChild.remove();
}

async function loadCycles() {
  const cycles = results(await api(`/api/cycles/?bot=${botId}&page_size=${MAX_TIMELINE}`));
  const timeline = document.getElementById("timeline");
  if (!cycles.length) return timeline.replaceChildren(el("li", { class: "muted empty" }, "No cycle yet."));
  timeline.replaceChildren(...cycles.map(cycleItem));
}

// --- live ----------------------------------------------------------------------------------------

const refreshPositions = debounce(loadPositions, 150);
const refreshPerformance = debounce(loadPerformance, 800);
const refreshCandles = debounce(loadCandles, 150);
const refreshRoundTrips = debounce(loadRoundTrips, 300);

function onEvent({ event, data }) {
  switch (event) {
    case "cycle":
      showCycle(data);
      refreshCandles();
      break;
    case "order":
      intents.set(data.id, data.intent);
      renderMarkers();
      break;
    case "fill":
      // The stream names the order `order_id`, the API `order`.
      addTrade({ ...data, order: data.order ?? data.order_id });
      fillToast(data, botName, decimalsOf(data.symbol));
      refreshPerformance();
      refreshRoundTrips();
      break;
    case "position":
      refreshPositions();
      break;
    case "equity":
      showEquity(data.equity);
      appendEquity(data.time, data.equity);
      refreshPositions();
      refreshPerformance();
      break;
    case "bot_status":
      setStatusBadge(root.querySelector('[data-field="status"]'), data.status, data.reason);
      root.querySelector('[data-field="status_reason"]').textContent = data.reason;
      applyStatus(root.querySelector(".controls"), data.status);
      break;
    case "alert":
      alertToast(data);
      bumpUnread(1);
      break;
  }
}

async function loadAll() {
  await Promise.all([loadCandles(), loadPerformance(), loadPositions(), loadCycles(), loadRoundTrips()]);
  await loadTrades();
  document.body.dataset.loaded = "true";
}

symbolSelect.addEventListener("change", loadCandles);
periodSelect.addEventListener("change", loadPerformance);
wireControls(root, (bot) => {
  setStatusBadge(root.querySelector('[data-field="status"]'), bot.status, bot.status_reason);
  loadAll();
});
bumpUnread(0);
// Reload everything on each (re)connect: events missed while the stream was down are in the API.
new Stream(`/ws/bots/${botId}/`, { onEvent, onOpen: loadAll }).connect();
