// A WebSocket stream that reconnects by itself (backoff 0.5 s → 10 s) and tells the page when it
// is (re)connected, so the page can reload what it missed while it was away. A stream the server
// refuses (alerts.consumers) is not retried: 4401 sends the user to the login page, 4404 (not
// their bot, or it no longer exists) stops for good.

const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_NOT_FOUND = 4404;

export class Stream {
  constructor(path, { onEvent, onOpen } = {}) {
    this.path = path;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.delay = 500;
    this.socket = null;
    this.closedByUs = false;
    this.pingTimer = null;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${location.host}${this.path}`;
  }

  connect() {
    this.closedByUs = false;
    const socket = new WebSocket(this.url());
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.delay = 500;
      document.body.dataset.streamState = "open";
      // Some proxies drop idle connections: a ping every 25 s keeps ours alive.
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25000);
      this.onOpen?.();
    });
    socket.addEventListener("message", (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      if (event.event === "pong") return;
      window.dispatchEvent(new CustomEvent("stream-event", { detail: event }));
      this.onEvent?.(event);
    });
    socket.addEventListener("close", (closing) => {
      clearInterval(this.pingTimer);
      document.body.dataset.streamState = "closed";
      if (this.closedByUs) return;
      if (closing.code === CLOSE_UNAUTHENTICATED) {
        this.toLogin();
        return;
      }
      if (closing.code === CLOSE_NOT_FOUND) {
        // Asking again would be refused again (every 10 s, for as long as the page stays open).
        this.closedByUs = true;
        document.body.dataset.streamState = "refused";
        document.getElementById("live-indicator")?.setAttribute("title", "no live updates: this bot is not available");
        return;
      }
      // A failed handshake (the server is down, or a proxy refused it) looks like any network
      // error: ask the API whether the session is still valid.
      if (!opened) this.checkSession();
      const wait = this.delay * (0.8 + Math.random() * 0.4);
      this.delay = Math.min(this.delay * 2, 10000);
      setTimeout(() => this.connect(), wait);
    });
    return this;
  }

  async checkSession() {
    try {
      const response = await fetch("/api/auth/me/", { credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) this.toLogin();
    } catch { /* the server is down: keep retrying */ }
  }

  toLogin() {
    this.close();
    location.href = `/login/?next=${encodeURIComponent(location.pathname)}`;
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  close() {
    this.closedByUs = true;
    this.socket?.close();
  }
}
