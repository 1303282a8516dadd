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

const numberFormats = new Map();
export function fmt(value, digits = 2) {
  if (value === null || value === undefined || value === "") return "–";
  const number = Number(value);
  if (!Number.isFinite(number)) return "–";
  if (!numberFormats.has(digits)) {
    numberFormats.set(digits, new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  }
  return numberFormats.get(digits).format(number);
}

// Account amounts: 2 decimals from 100 up, 6 below (an account in BTC moves in small numbers).
export function fmtMoney(value) {
  if (value === null || value === undefined || value === "") return "–";
  return fmt(value, Math.abs(Number(value)) >= 100 ? 2 : 6);
}

// Prices and quantities: as many digits as they need (crypto spans 1e-8 to 1e5).
export function fmtQty(value) {
  if (value === null || value === undefined) return "–";
  const number = Number(value);
  if (!Number.isFinite(number)) return "–";
  const abs = Math.abs(number);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : 8;
  return fmt(number, digits).replace(/(\.\d*?[1-9])0+$|\.0+$/, "$1");
}

export function fmtPct(value, digits = 2) {
  return value === null || value === undefined ? "–" : `${fmt(value, digits)}%`;
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

export function fillToast(fill, botName) {
  const who = botName ? `${botName}: ` : "";
  return toast(`${who}${fill.side.toUpperCase()} ${fmtQty(fill.quantity)} ${fill.symbol} @ ${fmtQty(fill.price)}`, "trade");
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
    const { botId, botName } = controls.dataset;
    const command = button.dataset.command;
    if (command === "stop" && !(await confirmStop(botName))) return;
    controls.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const answer = await api(`/api/bots/${botId}/${command}/`, { method: "POST", body: {} });
      const bot = command === "stop" ? answer.bot : answer;
      applyStatus(controls, bot.status);
      if (command === "stop") {
        toast(`${botName} stopped: ${answer.closed_positions} position(s) closed, realized PnL ${fmt(answer.realized_pnl)}`, "warning");
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
