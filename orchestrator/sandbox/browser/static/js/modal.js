// Modals the service opens (views.open) for the person writing, submitted or closed as in
// Slack; and the confirmation dialog of a button with `confirm`.

import { el } from "./dom.js";
import { collectState, renderBlocks, showErrors } from "./blocks.js";
import { plainText, textObject } from "./markup.js";

function requiredErrors(dialog) {
  const errors = {};
  for (const block of dialog.querySelectorAll(".bk-input")) {
    if (block.querySelector(".bk-optional")) continue;
    const state = collectState(block)[block.dataset.blockId] || {};
    const value = Object.values(state)[0] || {};
    const empty = ["value", "selected_option", "selected_date", "selected_time", "selected_user"].every((k) => !value[k])
      && !(value.selected_options || value.selected_users || []).length;
    if (empty) errors[block.dataset.blockId] = "Please fill out this field.";
  }
  return errors;
}

// Keeps the page's modal layer in step with the modals open for the person.
export class Modals {
  constructor(layer, ui) {
    this.layer = layer;
    this.ui = ui;
    this.shown = new Map(); // view id -> {hash, node}
  }

  update(modals) {
    const wanted = new Set(modals.map((m) => m.id));
    for (const [id, { node }] of this.shown) {
      if (!wanted.has(id)) {
        node.remove();
        this.shown.delete(id);
      }
    }
    for (const modal of modals) {
      const old = this.shown.get(modal.id);
      if (old && old.hash === modal.hash) continue;
      const node = this.render(modal);
      if (old) old.node.replaceWith(node);
      else this.layer.append(node);
      this.shown.set(modal.id, { hash: modal.hash, node });
    }
    this.layer.hidden = this.layer.children.length === 0;
  }

  render(modal) {
    const ctx = {
      people: this.ui.setup.people,
      channels: this.ui.setup.channels,
      confirm: this.ui.confirm,
      onAction: () => this.ui.toast("Buttons inside modals are not sent by the sandbox yet.", "info"),
    };
    const blocks = renderBlocks(modal.blocks, ctx);
    const submit = async () => {
      const local = requiredErrors(dialog);
      showErrors(dialog, local);
      if (Object.keys(local).length) return;
      const errors = await this.ui.submitModal(modal.id, collectState(blocks));
      showErrors(dialog, errors || {});
    };
    const close = () => this.ui.closeModal(modal.id);
    const dialog = el(
      "div",
      { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": modal.title?.text || "Modal" },
      el("div", { class: "modal-header" },
        el("span", { class: "modal-title", html: plainText(modal.title) }),
        el("button", { type: "button", class: "modal-x", "aria-label": "Close", text: "✕", onclick: close })),
      el("div", { class: "modal-body" }, blocks),
      el("div", { class: "modal-footer" },
        el("button", { type: "button", class: "bk-button", html: plainText(modal.close) || "Cancel", onclick: close }),
        modal.submit ? el("button", { type: "button", class: "bk-button bk-button-primary", html: plainText(modal.submit), onclick: submit }) : null),
    );
    return dialog;
  }
}

// A button's `confirm` object as Slack's confirmation dialog; resolves to true on confirm.
export function confirmDialog(layer, confirm) {
  return new Promise((resolve) => {
    const done = (answer) => {
      node.remove();
      layer.hidden = layer.children.length === 0;
      resolve(answer);
    };
    const node = el(
      "div",
      { class: "modal confirm", role: "alertdialog", "aria-label": confirm.title?.text || "Are you sure?" },
      el("div", { class: "modal-header" }, el("span", { class: "modal-title", html: plainText(confirm.title) || "Are you sure?" })),
      el("div", { class: "modal-body", html: textObject(confirm.text) }),
      el("div", { class: "modal-footer" },
        el("button", { type: "button", class: "bk-button", html: plainText(confirm.deny) || "Cancel", onclick: () => done(false) }),
        el("button", { type: "button", class: `bk-button bk-button-${confirm.style === "danger" ? "danger" : "primary"}`, html: plainText(confirm.confirm) || "Yes", onclick: () => done(true) })),
    );
    layer.append(node);
    layer.hidden = false;
  });
}
