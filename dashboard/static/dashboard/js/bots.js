// The bots list: status, equity, PnL and controls per bot, recent alerts; live over the user stream.
import { Stream } from "./stream.js";
import {
  alertToast, api, applyStatus, bumpUnread, debounce, el, fillToast, fmtMoney, fmtTime, setStatusBadge, signClass,
  wireControls,
} from "./ui.js";

const table = document.getElementById("bots-table");
const rows = new Map();
table?.querySelectorAll("tbody tr[data-bot-id]").forEach((row) => rows.set(Number(row.dataset.botId), row));

function nameOf(botId) {
  return rows.get(botId)?.querySelector("a")?.textContent ?? `bot ${botId}`;
}

function showBot(bot) {
  const row = rows.get(bot.id);
  if (!row) return;
  setStatusBadge(row.querySelector('[data-field="status"]'), bot.status, bot.status_reason);
  applyStatus(row.querySelector(".controls"), bot.status);
  if (bot.equity !== null) showEquity(row, bot.equity);
  if (bot.open_positions !== null) row.querySelector('[data-field="positions"]').textContent = bot.open_positions;
}

function showEquity(row, equity) {
  const pnl = Number(equity) - Number(row.dataset.startingCapital);
  row.querySelector('[data-field="equity"]').textContent = fmtMoney(equity, row.dataset.quote);
  const cell = row.querySelector('[data-field="pnl"]');
  cell.textContent = fmtMoney(pnl, row.dataset.quote);
  signClass(cell, pnl);
  row.classList.remove("flash");
  void row.offsetWidth; // restart the highlight animation
  row.classList.add("flash");
}

// Positions changed: one request for every bot on the page (open counts, equity).
const refreshBots = debounce(async () => {
  const page = await api("/api/bots/?page_size=500");
  for (const bot of page.results ?? page) showBot(bot);
  document.body.dataset.loaded = "true";
}, 200);

function addAlert(alert) {
  document.getElementById("alerts-empty")?.remove();
  const list = document.getElementById("alerts-list");
  list.prepend(
    el("li", { class: `alert sev-${alert.severity} unread`, dataset: { alertId: alert.id } },
      el("time", { datetime: alert.created_at }, fmtTime(alert.created_at)), " ",
      el("span", { class: "kind" }, alert.kind), " ", alert.message),
  );
  while (list.children.length > 20) list.lastElementChild.remove();
}

function onEvent({ event, bot_id: botId, data }) {
  const row = rows.get(botId);
  switch (event) {
    case "bot_status":
      if (row) {
        setStatusBadge(row.querySelector('[data-field="status"]'), data.status, data.reason);
        applyStatus(row.querySelector(".controls"), data.status);
      } else {
        location.reload(); // a bot this page does not list yet (created elsewhere)
      }
      break;
    case "equity":
      if (row) showEquity(row, data.equity);
      break;
    case "position":
      refreshBots();
      break;
    case "fill":
      fillToast(data, nameOf(botId));
      break;
    case "alert":
      addAlert(data);
      alertToast(data);
      bumpUnread(1);
      break;
  }
}

wireControls(document, (bot) => showBot(bot));
document.getElementById("alerts-read-all")?.addEventListener("click", async () => {
  const answer = await api("/api/alerts/read-all/", { method: "POST", body: {} });
  document.querySelectorAll("#alerts-list li.unread").forEach((item) => item.classList.remove("unread"));
  bumpUnread(-answer.updated);
});
bumpUnread(0);

// On every (re)connect, reload what may have changed while the stream was down.
new Stream("/ws/stream/", {
  onEvent,
  onOpen: () => (rows.size ? refreshBots() : (document.body.dataset.loaded = "true")),
}).connect();
