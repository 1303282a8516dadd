// The alerts page: after "Test", follow the test message's delivery until it is sent or failed;
// like every page, new in-app alerts come as toasts and count in the unread badge.
import { Stream } from "./stream.js";
import { alertToast, api, bumpUnread, results } from "./ui.js";

bumpUnread(0);
new Stream("/ws/stream/", {
  onEvent: (event) => {
    if (event.event === "alert") {
      alertToast(event.data);
      bumpUnread(1);
    }
  },
}).connect();

const status = document.getElementById("test-status");
if (status) {
  const alertId = status.dataset.alertId;
  const started = Date.now();
  const poll = async () => {
    let rows = [];
    try {
      rows = results(await api(`/api/alert-deliveries/?alert=${encodeURIComponent(alertId)}`));
    } catch (error) {
      status.textContent = `Test message: could not read its delivery (${error.message})`;
      return;
    }
    const last = rows[0];
    if (last && last.status === "sent") {
      status.textContent = `Test message delivered to ${last.channel_name} in ${last.latency_ms} ms.`;
      status.className = "test-status pos";
      return;
    }
    if (last && (last.status === "failed" || last.status === "retrying")) {
      const what = last.status === "failed" ? "failed" : "failed, will retry";
      status.textContent = `Test message to ${last.channel_name} ${what}: ${last.error}`;
      status.className = "test-status neg";
      return;
    }
    if (Date.now() - started > 30000) {
      status.textContent = "Test message: no result after 30 s. Is the alerts worker running?";
      status.className = "test-status neg";
      return;
    }
    setTimeout(poll, 700);
  };
  poll();
}
