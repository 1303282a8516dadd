// Shared helpers of the dashboard pages: API calls, formatting, toasts, bot controls.

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// fetch() against our API with the session cookie; throws an Error carrying the API's message.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data?.error?.message || `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

export function results(page) {
  return Array.isArray(page) ? page : page?.results ?? [];
}

// The figures look exactly as the server renders them first (dashboard/templatetags/money.py):
// thousands separators, rounding half away from zero, never "-0.00".
const numberFormats = new Map();
export function fmt(value, digits = 2) {
  if (value === null || value === undefined || value === "") return "–";
  const number = Number(value);
  if (!Number.isFinite(number)) return "–";
  if (!numberFormats.has(digits)) {
    numberFormats.set(digits, new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  }
  // The API's decimal strings are formatted as decimals (a float would round 1.005 down).
  const text = numberFormats.get(digits).format(typeof value === "string" ? value : number);
  return /^-[0.,]+$/.test(text) ? text.slice(1) : text; // -0.001 is "0.00"
}

// Accounts in these quote currencies move in small numbers: 0.01 BTC is hundreds of dollars.
const CRYPTO_QUOTES = new Set(["BTC", "XBT", "ETH", "BNB"]);
export function moneyDecimals(quote = "") {
  return CRYPTO_QUOTES.has(String(quote).toUpperCase()) ? 6 : 2;
}

// Account amounts (equity, PnL, fees) in the account's quote currency: 2 decimals, 6 in BTC.
export function fmtMoney(value, quote = "") {
  return fmt(value, moneyDecimals(quote));
}

// Decimals that show at least 4 significant digits of a price, 2 to 8: 95000 → 2, 0.0312 → 5,
// 0.00000812 → 8. A market's prices all use the decimals of its last price.
export function priceDecimals(value) {
  const number = Math.abs(Number(value));
  if (!Number.isFinite(number) || number === 0) return 2;
  const exponent = Number(number.toExponential().split("e")[1]);
  return Math.min(8, Math.max(2, 3 - exponent));
}

export function fmtPrice(value, decimals = priceDecimals(value)) {
  return fmt(value, decimals);
}

// Quantities: as many digits as they need (crypto spans 1e-8 to 1e5).
export function fmtQty(value) {
  if (value === null || value === undefined) return "–";
  const number = Number(value);
  if (!Number.isFinite(number)) return "–";
  const abs = Math.abs(number);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : 8;
  return fmt(number, digits).replace(/(\.\d*?[1-9])0+$|\.0+$/, "$1");
}

export function fmtPct(value, digits = 2) {
  const text = fmt(value, digits);
  return text === "–" ? text : `${text}%`;
}

export function fmtTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toISOString().replace("T", " ").slice(0, 19);
}

export function signClass(element, value) {
  element.classList.remove("pos", "neg");
  const number = Number(value);
  if (number > 0) element.classList.add("pos");
  else if (number < 0) element.classList.add("neg");
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function toast(message, kind = "info", { timeout = 6000 } = {}) {
  const box = document.getElementById("toasts");
  // A command's answer and the alert it raises often say the same: show it once.
  const shown = [...box.children].find((t) => t.textContent.startsWith(message) || message.startsWith(t.textContent));
  if (shown) return shown;
  const item = el("div", { class: `toast ${kind}`, role: "status" }, message);
  box.prepend(item);
  while (box.children.length > 5) box.lastElementChild.remove();
  setTimeout(() => item.remove(), timeout);
  return item;
}

// Run `fn` once after calls stop for `wait` ms (bursts of events cause one refresh).
export function debounce(fn, wait = 150) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

export function fillToast(fill, botName, decimals = undefined) {
  const who = botName ? `${botName}: ` : "";
  return toast(`${who}${fill.side.toUpperCase()} ${fmtQty(fill.quantity)} ${fill.symbol} @ ${fmtPrice(fill.price, decimals)}`, "trade");
}

export function alertToast(alert) {
  return toast(alert.message, alert.severity === "info" ? "info" : alert.severity);
}

export function bumpUnread(delta) {
  const badge = document.getElementById("unread-alerts");
  if (!badge) return;
  const count = Math.max(0, (Number(badge.textContent) || 0) + delta);
  badge.textContent = String(count);
  badge.classList.toggle("has-unread", count > 0);
}

// Enable the commands the bot's status allows (inactive → active ⇄ paused → stopped).
export function applyStatus(controls, status) {
  controls.dataset.status = status;
  controls.querySelector('[data-command="start"]').disabled = !(status === "inactive" || status === "paused");
  controls.querySelector('[data-command="pause"]').disabled = status !== "active";
  controls.querySelector('[data-command="stop"]').disabled = status === "stopped";
}

export function setStatusBadge(badge, status, reason = "") {
  badge.textContent = status;
  badge.className = `status status-${status}`;
  badge.title = reason || "";
}

function confirmStop(name) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-message").textContent =
    `Stop ${name}? Open orders are canceled and every open position is closed at market. A stopped bot cannot be restarted.`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// Start / pause / stop buttons; `onDone(bot)` gets the bot as the API returned it.
export function wireControls(root, onDone) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-command]");
    if (!button) return;
    const controls = button.closest(".controls");
    const { botId, botName, quote } = controls.dataset;
    const command = button.dataset.command;
    if (command === "stop" && !(await confirmStop(botName))) return;
    controls.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const answer = await api(`/api/bots/${botId}/${command}/`, { method: "POST", body: {} });
      const bot = command === "stop" ? answer.bot : answer;
      applyStatus(controls, bot.status);
      if (command === "stop") {
        toast(`${botName} stopped: ${answer.closed_positions} position(s) closed, realized PnL after fees ${fmtMoney(answer.realized_pnl, quote)}`, "warning");
      } else {
        toast(`${botName} ${bot.status}`);
      }
      onDone?.(bot);
    } catch (error) {
      toast(`${botName}: ${error.message}`, "error");
      applyStatus(controls, controls.dataset.status);
    }
  });
}
