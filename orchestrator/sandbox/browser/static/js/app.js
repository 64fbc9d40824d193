// The sandbox page: a Slack channel in front of the real service. It draws what the emulated
// workspace holds, refreshes on the server's change events, and sends what a person does.

import { el } from "./dom.js";
import { Inspector } from "./inspector.js";
import { setNames } from "./markup.js";
import { updateList } from "./messages.js";
import { confirmDialog, Modals } from "./modal.js";

const $ = (id) => document.getElementById(id);

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  return response.json();
}

async function postJson(path, body = {}) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  return { ok: response.ok && answer.ok !== false, ...answer };
}

function composer(form, placeholder, onSend, botName) {
  const box = el("textarea", { rows: 1, placeholder, "aria-label": placeholder });
  const mention = el("button", {
    type: "button",
    class: "composer-tool",
    title: `Mention @${botName}`,
    "aria-label": `Mention @${botName}`,
    text: "@",
    onclick: () => {
      box.value = `@${botName} ${box.value}`;
      box.focus();
    },
  });
  const send = el("button", { type: "submit", class: "send", "aria-label": "Send", text: "➤" });
  form.replaceChildren(box, el("div", { class: "composer-toolbar" }, mention, el("span", { class: "composer-hint", text: `Start with @${botName} to mention the bot · Enter sends · Shift+Enter: new line` }), send));
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text) return;
    box.value = "";
    onSend(text);
  });
  return box;
}

class Page {
  constructor(setup) {
    this.setup = setup;
    setNames(setup.names);
    const [channel, thread] = decodeURIComponent(location.hash.slice(1)).split("/");
    this.channel = setup.channels.some((c) => c.id === channel) ? channel : setup.channels[0].id;
    this.thread = thread || null;
    const saved = localStorage.getItem("sandbox-user");
    this.user = setup.people.some((p) => p.id === saved) ? saved : setup.people[0].id;
    this.inspectorOpen = localStorage.getItem("sandbox-inspector") !== "closed";
    this.loading = false;
    this.dirty = false;
    this.confirm = (confirm) => confirmDialog($("modal-layer"), confirm);
    this.modals = new Modals($("modal-layer"), this);
    this.inspector = new Inspector($("inspector"), this);
    this.build();
  }

  build() {
    const setup = this.setup;
    $("workspace-name").textContent = setup.workspace;
    $("agent-info").textContent = `Answered by ${setup.agent}. Streaming: ${setup.streaming}.`;
    const who = $("who");
    who.replaceChildren(...setup.people.map((p) => el("option", { value: p.id, text: `${p.name} — ${p.role}` })));
    who.value = this.user;
    who.addEventListener("change", () => {
      this.user = who.value;
      localStorage.setItem("sandbox-user", this.user);
      this.drawWho();
      this.refresh();
    });
    this.drawWho();
    $("channels").replaceChildren(...setup.channels.map((c) =>
      el("li", {}, el("button", { type: "button", class: "channel-link", "data-channel": c.id, onclick: () => this.openChannel(c.id) }, el("span", { class: "hash", text: "#" }), c.name))));
    const bot = setup.bot.name;
    composer($("channel-composer"), "", (text) => this.write(text, null), bot);
    this.threadBox = composer($("thread-composer"), "Reply…", (text) => this.write(text, this.thread), bot);
    $("close-thread").addEventListener("click", () => this.openThread(null, null));
    $("restart").addEventListener("click", () => this.restart());
    $("toggle-inspector").addEventListener("click", () => {
      this.inspectorOpen = !this.inspectorOpen;
      localStorage.setItem("sandbox-inspector", this.inspectorOpen ? "open" : "closed");
      this.layout();
      this.refresh();
    });
    this.openChannel(this.channel, this.thread);
  }

  drawWho() {
    const person = this.setup.people.find((p) => p.id === this.user);
    $("who-avatar").textContent = person.name.split(" ").map((w) => w[0]).join("").slice(0, 2);
    $("who-avatar").style.background = person.colour;
  }

  layout() {
    $("thread-pane").hidden = !this.thread;
    $("inspector").hidden = !this.inspectorOpen;
    $("toggle-inspector").setAttribute("aria-pressed", String(this.inspectorOpen));
    document.body.classList.toggle("with-thread", Boolean(this.thread));
    document.body.classList.toggle("with-inspector", this.inspectorOpen);
  }

  openChannel(channelId, thread = null) {
    if (channelId !== this.channel) $("channel-messages").replaceChildren();
    this.channel = channelId;
    const channel = this.setup.channels.find((c) => c.id === channelId);
    $("channel-name").textContent = channel.name;
    $("channel-topic").textContent = channel.topic;
    $("channel-composer").querySelector("textarea").placeholder = `Message #${channel.name}`;
    $("channel-composer").querySelector("textarea").setAttribute("aria-label", `Message #${channel.name}`);
    for (const link of document.querySelectorAll(".channel-link")) link.classList.toggle("active", link.dataset.channel === channelId);
    this.openThread(thread ? channelId : null, thread);
  }

  openThread(channelId, ts) {
    if (channelId && channelId !== this.channel) return this.openChannel(channelId, ts);
    if (ts !== this.thread) $("thread-messages").replaceChildren();
    this.thread = ts;
    const channel = this.setup.channels.find((c) => c.id === this.channel);
    $("thread-channel").textContent = `#${channel.name}`;
    history.replaceState(null, "", `#${this.channel}${ts ? "/" + ts : ""}`);
    this.layout();
    if (ts) this.threadBox.focus();
    this.refresh();
  }

  async refresh() {
    if (this.loading) {
      this.dirty = true;
      return;
    }
    this.loading = true;
    try {
      do {
        this.dirty = false;
        const query = new URLSearchParams({ channel: this.channel, user: this.user });
        if (this.thread) query.set("thread", this.thread);
        const [snapshot, inspected] = await Promise.all([
          getJson(`/sandbox/snapshot?${query}`),
          this.inspectorOpen ? getJson(`/sandbox/inspect?${query}`) : null,
        ]);
        this.draw(snapshot, inspected);
      } while (this.dirty);
    } catch (error) {
      $("service-status").textContent = "The sandbox is not answering";
    } finally {
      this.loading = false;
    }
  }

  draw(snapshot, inspected) {
    this.drawService(snapshot.service);
    updateList($("channel-messages"), snapshot.channel, this);
    if (this.thread) updateList($("thread-messages"), snapshot.thread, this, { inThread: true });
    const typing = $("thread-status");
    typing.hidden = !this.thread || !snapshot.thread_status;
    typing.textContent = snapshot.thread_status ? `${this.setup.bot.name} ${snapshot.thread_status}` : "";
    this.modals.update(snapshot.modals);
    if (inspected) this.inspector.update(inspected);
  }

  drawService(service) {
    const status = $("service-status");
    const words = {
      running: `Service running (pid ${service.pid})`,
      starting: "Service starting…",
      restarting: "Service restarting…",
      exited: `Service exited (${service.detail})`,
      stopped: "Service stopped",
    };
    status.textContent = words[service.status] || service.status;
    status.dataset.status = service.status;
    $("restart").disabled = service.status === "starting" || service.status === "restarting";
  }

  async write(text, thread) {
    const answer = await postJson("/sandbox/messages", { channel: this.channel, user: this.user, text, thread_ts: thread });
    if (!answer.ok) this.toast(answer.error || "The message was not sent", "error");
    this.refresh();
  }

  async click(message, action) {
    const answer = await postJson("/sandbox/actions", {
      channel: message.channel,
      user: this.user,
      message_ts: message.ts,
      ...action,
    });
    if (!answer.ok) this.toast(answer.error || "The click was not delivered", "error");
  }

  async stopStream(message) {
    const answer = await postJson("/sandbox/stop", { channel: message.channel, ts: message.ts });
    if (!answer.ok) this.toast(answer.error, "error");
  }

  async submitModal(viewId, stateValues) {
    const answer = await postJson(`/sandbox/modals/${viewId}/submit`, { user: this.user, state_values: stateValues });
    if (!answer.ok) this.toast(answer.error || "The modal was not submitted", "error");
    this.refresh();
    return answer.errors || {};
  }

  async closeModal(viewId) {
    await postJson(`/sandbox/modals/${viewId}/close`);
    this.refresh();
  }

  async restart() {
    $("restart").disabled = true;
    const answer = await postJson("/sandbox/restart");
    if (!answer.ok) this.toast(answer.error, "error");
  }

  toast(text, level = "warning") {
    const node = el("div", { class: `toast toast-${level}`, role: "status", text });
    $("toasts").append(node);
    setTimeout(() => node.remove(), 10000);
  }
}

async function main() {
  const page = new Page(await getJson("/sandbox/setup"));
  const live = new EventSource("/sandbox/live");
  live.addEventListener("change", () => page.refresh());
  live.addEventListener("notice", (event) => {
    const notice = JSON.parse(event.data);
    page.toast(notice.text, notice.level);
  });
  live.addEventListener("open", () => page.refresh());
  window.sandboxPage = page;
}

main();
