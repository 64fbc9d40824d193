// Messages as Slack lists them: avatar, name (with an APP badge for bots), time, the blocks (or
// the text), replies under a channel message, "Only visible to you" for ephemerals, and a Stop
// button while a native stream is open. Lists are updated in place: a message that did not
// change keeps its DOM, so whatever someone is typing into a form stays.

import { clockTime, el, initials } from "./dom.js";
import { collectState, renderBlocks } from "./blocks.js";
import { emoji, mrkdwn } from "./markup.js";

function avatar(sender, size = "") {
  const bot = sender.is_bot && sender.name === "Orchestrator";
  return el("div", { class: `avatar ${size}`, style: `background:${sender.colour}`, "aria-hidden": "true", text: bot ? "🤖" : initials(sender.name) });
}

function repliesLine(message, ui) {
  const replies = message.replies;
  const count = replies.count === 1 ? "1 reply" : `${replies.count} replies`;
  return el(
    "button",
    { type: "button", class: "replies", onclick: () => ui.openThread(message.channel, message.ts) },
    replies.who.map((who) => avatar(who, "tiny")),
    el("span", { class: "replies-count", text: count }),
    el("span", { class: "replies-last", text: `Last reply ${clockTime(replies.last_at)}` }),
  );
}

function messageNode(message, ui, { inThread }) {
  const sender = message.sender;
  const ctx = {
    people: ui.setup.people,
    channels: ui.setup.channels,
    confirm: ui.confirm,
    onAction: (action) => {
      const container = node.querySelector(".message-content");
      ui.click(message, { ...action, state_values: collectState(container) });
    },
  };
  const content = el("div", { class: "message-content" });
  content.append(message.blocks?.length ? renderBlocks(message.blocks, ctx) : el("div", { class: "bk-text", html: mrkdwn(message.text) }));
  const header = el(
    "div",
    { class: "message-header" },
    el("span", { class: "sender", text: sender.name }),
    sender.is_bot ? el("span", { class: "app-badge", text: "APP" }) : null,
    el("span", { class: "time", title: new Date(message.at * 1000).toLocaleString(), text: clockTime(message.at) }),
  );
  const body = el(
    "div",
    { class: "message-body" },
    message.ephemeral ? el("div", { class: "ephemeral-note", text: "👁 Only visible to you" }) : null,
    header,
    content,
    message.edited && !message.streaming ? el("span", { class: "edited", text: "(edited)" }) : null,
    message.reactions?.length ? el("div", { class: "reactions" }, message.reactions.map((r) => el("span", { class: "reaction", text: `${emoji(`:${r}:`)} 1` }))) : null,
    message.streaming
      ? el(
          "div",
          { class: "stream-bar" },
          el("span", { class: "stream-dot", "aria-label": "streaming" }),
          el("button", { type: "button", class: "stop-button", text: "■ Stop", onclick: () => ui.stopStream(message) }),
        )
      : null,
    !inThread && message.replies ? repliesLine(message, ui) : null,
  );
  const node = el(
    "div",
    {
      class: `message${message.ephemeral ? " ephemeral" : ""}${message.streaming ? " streaming" : ""}`,
      "data-ts": message.ts,
      "data-sender": sender.id,
      "data-at": message.at,
      role: "listitem",
    },
    avatar(sender),
    body,
  );
  if (!inThread && !message.ephemeral) {
    node.append(
      el("div", { class: "message-tools" },
        el("button", { type: "button", class: "tool", title: "Reply in thread", "aria-label": "Reply in thread", text: "💬", onclick: () => ui.openThread(message.channel, message.ts) }),
      ),
    );
  }
  return node;
}

// Puts `messages` in `list`, redrawing only the ones that changed.
export function updateList(list, messages, ui, { inThread = false } = {}) {
  const scroller = list.parentElement;
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
  const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
  const wanted = messages.map((message) => {
    const key = `${message.ephemeral ? "e" : "m"}${message.ts}`;
    const json = JSON.stringify(message);
    const old = existing.get(key);
    existing.delete(key);
    if (old && old.dataset.json === json) return old;
    const node = messageNode(message, ui, { inThread });
    node.dataset.key = key;
    node.dataset.json = json;
    if (old) old.replaceWith(node);
    return node;
  });
  for (const node of existing.values()) node.remove();
  wanted.forEach((node, index) => {
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
  });
  let previous = null;
  for (const node of wanted) {
    const same = previous && previous.dataset.sender === node.dataset.sender && node.dataset.at - previous.dataset.at < 300
      && !node.classList.contains("ephemeral") && !previous.classList.contains("ephemeral");
    node.classList.toggle("continued", Boolean(same));
    previous = node;
  }
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
}
