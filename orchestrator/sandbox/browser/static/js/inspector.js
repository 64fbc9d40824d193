// The side panel: why the bot did what it did. The thread as the service stored it (state,
// transitions, approvals, the conversation sent to the agent), the raw Slack calls, the AG-UI
// traffic (or, for your own agent, the service's log lines), and the service's log.

import { el } from "./dom.js";

const TABS = [
  ["thread", "Thread"],
  ["slack", "Slack calls"],
  ["agent", "AG-UI events"],
  ["log", "Service log"],
];

function time(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

function json(value) {
  return el("pre", { class: "json", text: JSON.stringify(value, null, 2) });
}

function expandable(key, summary, body, open) {
  const node = el("details", { "data-key": key, open: open.has(key) || undefined }, el("summary", {}, summary), body);
  node.addEventListener("toggle", () => (node.open ? open.add(key) : open.delete(key)));
  return node;
}

function stateBadge(state) {
  return el("span", { class: `state-badge state-${state}`, text: state });
}

function threadTab(data, open) {
  const thread = data.thread;
  if (!thread) {
    return el("div", { class: "empty", text: data.conversation ? "The service has not stored this thread: it answers mentions, and messages in threads it is part of." : "Open a thread to see its state." });
  }
  if (thread.unreadable) return el("div", { class: "empty", text: `The database could not be read: ${thread.unreadable}` });
  const facts = [
    ["conversation", data.conversation],
    ["state", stateBadge(thread.state)],
    ["version", String(thread.version)],
    ["requester", thread.requester],
    ["agent", thread.agent],
    ["run", thread.run_id],
    ["error", thread.error_kind && `${thread.error_kind}: ${thread.error || ""}`],
  ].filter(([, value]) => value);
  const rows = thread.transitions.map((h) =>
    el("tr", {},
      el("td", { class: "mono", text: time(h.at) }),
      el("td", { class: "mono", text: h.trigger }),
      el("td", {}, stateBadge(h.from), " → ", stateBadge(h.to)),
      el("td", { class: "mono", text: h.actor || "" })),
  );
  return el(
    "div",
    { class: "thread-tab" },
    el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])),
    el("h4", { text: "Transitions" }),
    el("table", { class: "transitions" }, el("thead", {}, el("tr", {}, ["at", "trigger", "from → to", "by"].map((h) => el("th", { text: h })))), el("tbody", {}, rows)),
    thread.approvals.length ? el("h4", { text: "Approvals" }) : null,
    thread.approvals.map((a) =>
      el("div", { class: `approval approval-${a.status}` },
        el("div", {}, el("b", { text: a.status }), a.answered_by ? ` by ${a.answered_by}` : "", ` · approvers: ${(a.approvers || []).join(", ") || "requester"}`),
        el("div", { class: "muted", text: a.message }),
        a.answer ? json(a.answer) : null),
    ),
    thread.queued.length ? el("h4", { text: `Queued messages: ${thread.queued.length}` }) : null,
    el("h4", { text: `Conversation sent to the agent (${thread.conversation.length} messages)` }),
    thread.conversation.map((m, i) => expandable(`conv-${i}`, el("span", { class: "mono" }, `${m.role}: `, el("span", { class: "muted", text: summary(m) })), json(m), open)),
  );
}

function summary(message) {
  if (typeof message.content === "string") return message.content.slice(0, 80);
  if (message.toolCalls) return message.toolCalls.map((c) => c.function?.name).join(", ");
  return "";
}

function slackTab(data, open) {
  if (!data.slack_calls.length) return el("div", { class: "empty", text: "No Slack calls yet." });
  return el("div", { class: "calls" }, data.slack_calls.map((call) =>
    expandable(`call-${call.seq}`,
      el("span", {}, el("span", { class: "mono muted", text: time(call.at) + " " }), el("span", { class: "mono", text: call.method }), " ",
        el("span", { class: `pill ${call.ok ? "ok" : "bad"}`, text: call.ok ? "ok" : call.error || String(call.status) })),
      el("div", {}, el("div", { class: "muted", text: "request" }), json(call.params), el("div", { class: "muted", text: "response" }), json(call.response)),
      open),
  ));
}

function eventSummary(entry) {
  const data = entry.data;
  if (entry.kind === "request") {
    const resume = data.resume ? " (resume)" : data.forwardedProps?.command ? " (resume, legacy)" : "";
    return `→ run request${resume}: ${(data.messages || []).length} messages`;
  }
  if (entry.kind === "raw") return `← raw: ${String(data).trim().slice(0, 60)}`;
  const extra = data.delta ?? data.toolCallName ?? data.stepName ?? data.message ?? data.name ?? "";
  return `← ${data.type}${extra ? ": " + String(extra).slice(0, 60) : ""}`;
}

// Consecutive deltas of one message or tool call read as one line: "TEXT_MESSAGE_CONTENT ×23".
function grouped(entries) {
  const groups = [];
  for (const entry of entries) {
    const data = entry.data;
    const streamed = entry.kind === "event" && typeof data.delta === "string";
    const key = streamed ? `${data.type}:${data.messageId || data.toolCallId || ""}` : null;
    const last = groups[groups.length - 1];
    if (key && last && last.key === key) {
      last.entries.push(entry);
      last.delta += data.delta;
    } else {
      groups.push({ key, entries: [entry], delta: streamed ? data.delta : "" });
    }
  }
  return groups;
}

function agentTab(data, open, scripted) {
  if (!scripted) {
    return el("div", {},
      el("p", { class: "muted", text: "The sandbox does not see your agent's events. These are the service's log lines about this thread:" }),
      logTab({ logs: data.logs }));
  }
  if (!data.agent.length) return el("div", { class: "empty", text: "Nothing sent to the agent for this thread yet." });
  return el("div", { class: "events" }, grouped(data.agent).map((group, i) => {
    const first = group.entries[0];
    const label = group.entries.length > 1
      ? `← ${first.data.type} ×${group.entries.length}: ${group.delta.slice(0, 70)}`
      : eventSummary(first);
    const body = group.entries.length > 1 ? json(group.entries.map((e) => e.data)) : json(first.data);
    return expandable(`ev-${first.run}-${i}`, el("span", { class: `mono ${first.kind === "request" ? "request" : ""}`, text: label }), body, open);
  }));
}

function logTab(data) {
  if (!data.logs.length) return el("div", { class: "empty", text: "No log lines yet." });
  return el("div", { class: "logs" }, data.logs.map((line) => {
    const { at, level, logger, msg, pid, ...rest } = line;
    const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
    return el("div", { class: "log-line mono" },
      el("span", { class: "muted", text: `${(at || "").slice(11, 19)} ` }),
      el("span", { class: `level-${level}`, text: `${level} ` }),
      el("b", { text: msg }),
      fields ? el("span", { class: "muted", text: ` ${fields}` }) : null,
      el("span", { class: "muted", text: ` (${logger || ""}${pid ? ", pid " + pid : ""})` }));
  }));
}

export class Inspector {
  constructor(root, ui) {
    this.root = root;
    this.ui = ui;
    this.tab = "thread";
    this.open = new Set();
    this.last = "";
    this.tabs = el("div", { class: "tabs", role: "tablist" }, TABS.map(([id, label]) =>
      el("button", { type: "button", role: "tab", class: "tab", "data-tab": id, text: label, onclick: () => this.select(id) })));
    this.body = el("div", { class: "inspector-body" });
    root.append(el("div", { class: "inspector-title", text: "Inspector" }), this.tabs, this.body);
    this.select("thread");
  }

  select(tab) {
    this.tab = tab;
    for (const button of this.tabs.children) button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    this.last = "";
    if (this.data) this.update(this.data);
  }

  update(data) {
    this.data = data;
    const key = this.tab + JSON.stringify(data);
    if (key === this.last) return;
    this.last = key;
    const scroll = this.body.scrollTop;
    const render = { thread: threadTab, slack: slackTab, agent: (d, o) => agentTab(d, o, this.ui.setup.scripted), log: logTab }[this.tab];
    this.body.replaceChildren(render(data, this.open));
    this.body.scrollTop = scroll;
  }
}
