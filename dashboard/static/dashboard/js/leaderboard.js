// The arena: every bot's account value on one market-time chart, the leaderboard with its
// bootstrap intervals drawn as ranges, the per-model table and the analytics; refreshed when any
// of the user's bots marks equity, trades or changes status.
import { ColorType, LineSeries, LineStyle, createChart } from "lightweight-charts";
import { Stream } from "./stream.js";
import { alertToast, api, bumpUnread, debounce, el, fillToast, fmt, fmtMoney, fmtPct } from "./ui.js";

const periodSelect = document.getElementById("period-select");
const tbody = document.querySelector("#leaderboard-table tbody");
const COLORS = ["#3b82f6", "#22c55e", "#f59e0b", "#ef4444", "#a855f7", "#14b8a6", "#ec4899", "#eab308", "#64748b", "#f97316"];

// --- ranges ----------------------------------------------------------------------------------

// A 95 % interval as a bar on a scale shared by its column, with 0 marked and the point estimate.
function drawRanges(table) {
  const cells = [...table.querySelectorAll("td.range")];
  const columns = new Map();
  for (const cell of cells) {
    const index = cell.cellIndex;
    if (!columns.has(index)) columns.set(index, []);
    columns.get(index).push(cell);
  }
  for (const column of columns.values()) {
    const known = column.filter((c) => c.dataset.low !== undefined && c.dataset.low !== "");
    let lo = 0, hi = 0;
    for (const c of known) { lo = Math.min(lo, Number(c.dataset.low)); hi = Math.max(hi, Number(c.dataset.high)); }
    const span = hi - lo || 1;
    const x = (v) => 4 + ((Number(v) - lo) / span) * 92;
    for (const cell of column) {
      const verdict = cell.dataset.verdict;
      if (cell.dataset.low === undefined || cell.dataset.low === "") {
        cell.replaceChildren(el("span", { class: "muted" }, verdict || "–"));
        continue;
      }
      const text = (v) => (cell.dataset.kind === "pct" ? fmtPct(v) : fmt(v));
      const svg = `<svg viewBox="0 0 100 12" width="100" height="12" aria-hidden="true">` +
        `<line x1="${x(0)}" x2="${x(0)}" y1="0" y2="12" class="zero"/>` +
        `<line x1="${x(cell.dataset.low)}" x2="${x(cell.dataset.high)}" y1="6" y2="6" class="span"/>` +
        `<circle cx="${x(cell.dataset.point)}" cy="6" r="2.5" class="point"/></svg>`;
      const bar = el("span", { class: "bar", title: `95 %: ${text(cell.dataset.low)} to ${text(cell.dataset.high)}` });
      bar.innerHTML = svg;
      const parts = [bar, el("span", { class: "ci" }, `${text(cell.dataset.low)} … ${text(cell.dataset.high)}`)];
      if (verdict) {
        const tone = verdict.startsWith("beats") ? "pos" : verdict.startsWith("trails") ? "neg" : "muted";
        parts.push(el("span", { class: `verdict ${tone}` }, verdict));
      }
      cell.replaceChildren(...parts);
    }
  }
}

function rangeCell(interval, point, kind, verdict) {
  const data = { kind };
  if (verdict) data.verdict = verdict;
  if (interval) Object.assign(data, { low: interval[0], high: interval[1], point });
  return el("td", { class: "range", dataset: data });
}

// --- leaderboard -----------------------------------------------------------------------------

const signed = (value) => (Number(value) > 0 ? "pos" : Number(value) < 0 ? "neg" : "");

function row(r) {
  const quote = r.quote_currency;
  const cells = el("tr", { dataset: { botId: r.bot_id, quote } },
    el("td", {}, r.rank ?? "–"),
    el("td", {}, el("a", { href: `/bots/${r.bot_id}/` }, r.name), " ", el("span", { class: `status status-${r.status}` }, r.status)),
    el("td", {}, r.is_baseline ? el("span", { class: "tag" }, "baseline") : r.provider_name, " ", el("code", {}, r.model)),
    el("td", { class: `num ${signed(r.net_return_pct)}`.trim() }, fmtPct(r.net_return_pct)),
    rangeCell(r.net_return_ci, r.net_return_pct, "pct"),
    el("td", { class: "num" }, r.sharpe === null ? "–" : fmt(r.sharpe)),
    rangeCell(r.sharpe_ci, r.sharpe, "ratio"),
    el("td", { class: "num" }, fmtPct(r.max_drawdown_pct)),
    el("td", { class: "num" }, fmtPct(r.excess_return_vs_buy_and_hold_pct)),
    rangeCell(r.excess_return_ci, r.excess_return_vs_buy_and_hold_pct, "pct", r.verdict),
    // Bots in different currencies sit side by side (ETH/BTC trades in BTC): the unit is shown.
    el("td", { class: "num" }, fmtMoney(r.net_pnl, quote), " ", el("span", { class: "muted" }, quote)),
    el("td", { class: "num" }, fmt(r.llm_cost, 4), " ", el("span", { class: "muted" }, "USD")),
    el("td", { class: "num" }, r.grid ? `${r.periods} × ${r.grid}` : `${r.periods}`),
    el("td", { class: "num" }, r.trades),
    el("td", { class: "num" }, fmtPct(r.win_rate, 1)),
    el("td", { class: "num" }, fmtPct(r.invalid_output_rate, 1)));
  const note = r.unranked_reason
    ? el("tr", { class: "note", dataset: { noteFor: r.bot_id } }, el("td", {}), el("td", { colspan: 15, class: "muted" }, `Not ranked: ${r.unranked_reason}`))
    : null;
  return [cells, note].filter(Boolean);
}

function showBoard(board) {
  if (!board.rows.length) {
    tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 16, class: "muted" }, "No bot has completed a trading cycle yet.")));
  } else {
    tbody.replaceChildren(...board.rows.flatMap(row));
  }
  drawRanges(document.getElementById("leaderboard-table"));
  const notStarted = document.getElementById("not-started");
  notStarted.hidden = !board.not_started.length;
  document.getElementById("not-started-list").replaceChildren(
    ...board.not_started.flatMap((b, i) => [
      i ? " · " : null, el("a", { href: `/bots/${b.bot_id}/` }, b.name), " ", el("span", { class: `status status-${b.status}` }, b.status),
    ]).filter(Boolean));
  const models = document.querySelector("#models-table tbody");
  if (!board.models.length) {
    models.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 9, class: "muted" }, "No ranked bot yet.")));
  } else {
    models.replaceChildren(...board.models.map((m) => el("tr", {},
      el("td", {}, m.rank ?? "–"),
      el("td", {}, m.is_baseline ? el("span", { class: "tag" }, "baseline") : m.provider_name, " ", el("code", {}, m.model)),
      el("td", { class: "num" }, m.bots),
      el("td", { class: `num ${signed(m.net_return_pct)}`.trim() }, fmtPct(m.net_return_pct)),
      rangeCell(m.net_return_ci, m.net_return_pct, "pct"),
      el("td", { class: "num" }, m.sharpe === null ? "–" : fmt(m.sharpe)),
      rangeCell(m.sharpe_ci, m.sharpe, "ratio"),
      el("td", { class: "num" }, fmtPct(m.excess_return_vs_buy_and_hold_pct)),
      rangeCell(m.excess_return_ci, m.excess_return_vs_buy_and_hold_pct, "pct", m.verdict))));
  }
  drawRanges(document.getElementById("models-table"));
  const start = board.window_start ? new Date(board.window_start).toISOString().slice(0, 16).replace("T", " ") : "–";
  document.getElementById("window-note").textContent =
    `Window: ${start} to now (UTC, the platform's clock), the same for every bot. Account value as % return, on market time since the window began; baselines (rule bots, no LLM) dashed.`;
}

// --- arena chart -----------------------------------------------------------------------------

function elapsed(seconds) {
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days) return `+${days}d${hours ? ` ${hours}h` : ""}`;
  if (hours) return `+${hours}h${minutes ? ` ${minutes}m` : ""}`;
  return `+${minutes}m`;
}

const chart = createChart(document.getElementById("arena-chart"), {
  layout: { background: { type: ColorType.Solid, color: "#171d24" }, textColor: "#9aa7b6" },
  grid: { vertLines: { color: "#1f2730" }, horzLines: { color: "#1f2730" } },
  // The x axis is market time elapsed since the window began (not a calendar date).
  timeScale: { borderColor: "#26303b", tickMarkFormatter: (time) => elapsed(time) },
  localization: { timeFormatter: (time) => `market time ${elapsed(time)}`, priceFormatter: (p) => `${fmt(p)}%` },
  rightPriceScale: { borderColor: "#26303b" },
  autoSize: true,
});
let lines = [];

function showArena(data) {
  for (const series of lines) chart.removeSeries(series);
  lines = [];
  const legend = document.getElementById("arena-legend");
  legend.replaceChildren();
  data.forEach((line, i) => {
    const color = COLORS[i % COLORS.length];
    const series = chart.addSeries(LineSeries, {
      color, lineWidth: 2, lineStyle: line.is_baseline ? LineStyle.Dashed : LineStyle.Solid,
      title: "", priceLineVisible: false, lastValueVisible: false,
    });
    // One point per time (the start and the first mark may share it): the later one counts.
    const byTime = new Map();
    for (const [time, value] of line.points) byTime.set(time, Number(value));
    series.setData([...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time, value })));
    lines.push(series);
    const key = el("span", { class: `key${line.is_baseline ? " baseline" : ""}` }, line.name);
    // Through the CSSOM, not a style attribute: the Content-Security-Policy refuses those.
    key.style.setProperty("--color", color);
    legend.append(key);
  });
  document.getElementById("arena-chart-empty").hidden = data.length > 0;
  chart.timeScale().fitContent();
}

// --- analytics -------------------------------------------------------------------------------

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return elapsed(seconds).slice(1);
}

function analyticsRow(label, a, money) {
  const t = a.trades;
  return el("tr", {},
    el("td", {}, label),
    el("td", { class: "num" }, t.round_trips),
    el("td", { class: "num" }, fmtPct(t.win_rate, 1)),
    el("td", { class: "num" }, duration(t.avg_holding_seconds)),
    el("td", { class: "num" }, duration(t.median_holding_seconds)),
    el("td", { class: "num" }, t.long_pct === null ? "–" : `${fmt(t.long_pct, 0)}% / ${fmt(t.short_pct, 0)}%`),
    el("td", { class: "num" }, t.avg_leverage === null ? "–" : `${fmt(t.avg_leverage)}×`),
    el("td", { class: "num" }, t.avg_confidence === null ? "–" : fmt(t.avg_confidence)),
    el("td", { class: "num pos" }, fmtPct(t.biggest_win_pct, 1), money && t.biggest_win !== null ? el("span", { class: "muted" }, ` ${fmtMoney(t.biggest_win, a.quote_currency)} ${a.quote_currency}`) : null),
    el("td", { class: "num neg" }, fmtPct(t.biggest_loss_pct, 1), money && t.biggest_loss !== null ? el("span", { class: "muted" }, ` ${fmtMoney(t.biggest_loss, a.quote_currency)} ${a.quote_currency}`) : null),
    el("td", { class: "num" }, fmtPct(t.fees_pct_of_gross, 1)),
    el("td", { class: "num" }, a.decisions),
    el("td", { class: "num" }, fmtPct(a.invalid_output_rate, 1)),
    el("td", { class: "num" }, a.llm_cost_per_decision === null ? "–" : `$${fmt(a.llm_cost_per_decision, 4)}`),
    el("td", { class: "num" }, a.llm_cost_per_round_trip === null ? "–" : `$${fmt(a.llm_cost_per_round_trip, 4)}`));
}

function showAnalytics(data) {
  const body = document.querySelector("#analytics-table tbody");
  const rows = [
    ...data.bots.map((b) => analyticsRow(el("a", { href: `/bots/${b.bot_id}/` }, b.name), b.analytics, true)),
    ...data.models.map((m) => {
      const row = analyticsRow([el("span", { class: "tag" }, `model · ${m.bots} bot${m.bots === 1 ? "" : "s"}`), " ", el("code", {}, m.model)], m.analytics, false);
      row.classList.add("model-row");
      return row;
    }),
  ];
  if (!rows.length) body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 15, class: "muted" }, "No bots yet.")));
  else body.replaceChildren(...rows);
}

// --- loading and live ------------------------------------------------------------------------

async function load() {
  const period = periodSelect.value;
  const [board, arena, analytics] = await Promise.all([
    api(`/api/leaderboard/?period=${period}`), api(`/api/arena/?period=${period}`), api(`/api/analytics/?period=${period}`),
  ]);
  showBoard(board);
  showArena(arena);
  showAnalytics(analytics);
  document.body.dataset.loaded = "true";
}

drawRanges(document.getElementById("leaderboard-table"));
const refresh = debounce(load, 1500);
periodSelect.addEventListener("change", load);
bumpUnread(0);
new Stream("/ws/stream/", {
  onOpen: load,
  onEvent: ({ event, data }) => {
    if (event === "equity" || event === "bot_status" || event === "fill") refresh();
    if (event === "fill") fillToast(data);
    if (event === "alert") { alertToast(data); bumpUnread(1); }
  },
}).connect();
