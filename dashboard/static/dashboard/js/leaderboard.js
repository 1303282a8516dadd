// The leaderboard: ranked rows, refreshed when any of the user's bots trades or marks equity.
import { Stream } from "./stream.js";
import { alertToast, api, bumpUnread, debounce, el, fillToast, fmt, fmtMoney, fmtPct } from "./ui.js";

const periodSelect = document.getElementById("period-select");
const tbody = document.querySelector("#leaderboard-table tbody");
function row(r) {
  const ret = el("td", { class: `num ${Number(r.return_pct) > 0 ? "pos" : Number(r.return_pct) < 0 ? "neg" : ""}` }, fmtPct(r.return_pct));
  const quote = r.quote_currency;
  return el("tr", { dataset: { botId: r.bot_id, quote } },
    el("td", {}, r.rank),
    el("td", {}, el("a", { href: `/bots/${r.bot_id}/` }, r.name), " ", el("span", { class: `status status-${r.status}` }, r.status)),
    el("td", {}, r.is_baseline ? el("span", { class: "tag" }, "baseline") : r.provider_name, " ", el("code", {}, r.model)),
    ret,
    // Bots in different currencies sit side by side (ETH/BTC trades in BTC): the unit is shown.
    el("td", { class: "num" }, fmtMoney(r.net_pnl, quote), " ", el("span", { class: "muted" }, quote)),
    el("td", { class: "num" }, r.sharpe === null ? "–" : fmt(r.sharpe)),
    el("td", { class: "num" }, fmtPct(r.max_drawdown_pct)),
    el("td", { class: "num" }, fmtPct(r.win_rate, 1)),
    el("td", { class: "num" }, r.trades),
    el("td", { class: "num" }, fmtPct(r.invalid_output_rate, 1)));
}

async function load() {
  const rows = await api(`/api/leaderboard/?period=${periodSelect.value}`);
  if (!rows.length) {
    tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 10, class: "muted" }, "No bots yet.")));
    document.body.dataset.loaded = "true";
    return;
  }
  tbody.replaceChildren(...rows.map(row));
  document.body.dataset.loaded = "true";
}

const refresh = debounce(load, 1000);
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
