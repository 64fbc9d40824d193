// Block Kit layout blocks drawn close to how Slack's client draws them: sections, headers,
// context, actions, inputs, markdown, rich text, images, tables, and a native stream's plan
// and task cards.

import { el, uniqueId } from "./dom.js";
import { collectState, renderElement } from "./elements.js";
import { escapeHtml, markdown, plainText, richText, textObject } from "./markup.js";

const TASK_ICONS = { pending: "○", in_progress: "", complete: "✓", error: "✕" };

function section(block, blockId, ctx) {
  const main = el("div", { class: "bk-section-main" });
  if (block.text) main.append(el("div", { class: "bk-text", html: textObject(block.text) }));
  if (block.fields?.length) {
    main.append(el("div", { class: "bk-fields" }, block.fields.map((f) => el("div", { class: "bk-field", html: textObject(f) }))));
  }
  const node = el("div", { class: "bk-section" }, main);
  if (block.accessory) {
    node.append(el("div", { class: "bk-accessory" }, renderElement(block.accessory, blockId, ctx, { dispatch: true })));
  }
  return node;
}

function context(block) {
  return el(
    "div",
    { class: "bk-context" },
    (block.elements || []).map((item) =>
      item.type === "image"
        ? el("img", { class: "bk-context-image", src: item.image_url, alt: item.alt_text || "" })
        : el("span", { class: "bk-context-text", html: textObject(item) }),
    ),
  );
}

function actions(block, blockId, ctx) {
  return el(
    "div",
    { class: "bk-actions", "data-block-id": blockId },
    (block.elements || []).map((element) => renderElement(element, blockId, ctx, { dispatch: true })),
  );
}

function input(block, blockId, ctx) {
  const id = uniqueId("input");
  const labelId = `${id}-label`;
  const element = block.element || {};
  const grouped = element.type === "radio_buttons" || element.type === "checkboxes";
  const control = renderElement(element, blockId, ctx, { dispatch: Boolean(block.dispatch_action), id });
  if (grouped) control.setAttribute("aria-labelledby", labelId);
  const label = el(
    "label",
    { class: "bk-label", id: labelId, for: grouped ? undefined : id },
    el("span", { html: plainText(block.label) }),
    block.optional ? el("span", { class: "bk-optional", text: " (optional)" }) : null,
  );
  return el(
    "div",
    { class: "bk-input", "data-block-id": blockId },
    label,
    control,
    block.hint ? el("div", { class: "bk-hint", html: plainText(block.hint) }) : null,
    el("div", { class: "bk-error", "data-error-for": blockId, hidden: true }),
  );
}

function image(block) {
  return el(
    "figure",
    { class: "bk-image" },
    block.title ? el("figcaption", { html: plainText(block.title) }) : null,
    el("img", { src: block.image_url || block.slack_file?.url || "", alt: block.alt_text || "" }),
  );
}

function table(block) {
  const cell = (c) => (c?.type === "rich_text" ? richText(c) : escapeHtml(c?.text ?? c ?? ""));
  const rows = (block.rows || []).map((row, index) =>
    el("tr", {}, row.map((c) => el(index === 0 ? "th" : "td", { html: cell(c) }))),
  );
  return el("div", { class: "bk-table-wrap" }, el("table", { class: "bk-table" }, rows));
}

function task(card) {
  const status = card.status || "pending";
  const details = [card.details, card.output].filter(Boolean).join("\n");
  return el(
    "div",
    { class: `bk-task task-${status}`, "data-status": status },
    el("span", { class: "task-icon", "aria-label": status, text: TASK_ICONS[status] ?? "?" }),
    el(
      "div",
      { class: "task-body" },
      el("div", { class: "task-title", text: card.title || "" }),
      details ? el("div", { class: "task-details", html: markdown(details) }) : null,
    ),
  );
}

function plan(block) {
  return el(
    "div",
    { class: "bk-plan" },
    block.title ? el("div", { class: "plan-title", text: block.title }) : null,
    (block.tasks || []).map(task),
  );
}

const BLOCKS = {
  section,
  header: (block) => el("div", { class: "bk-header", html: plainText(block.text) }),
  divider: () => el("hr", { class: "bk-divider" }),
  context,
  actions,
  input,
  markdown: (block) => el("div", { class: "bk-markdown", html: markdown(block.text) }),
  rich_text: (block) => el("div", { class: "bk-rich-text", html: richText(block) }),
  image,
  table,
  plan,
  task_card: (block) => el("div", { class: "bk-plan bk-timeline" }, task(block)),
  video: (block) => el("div", { class: "bk-file", text: `▶ ${block.title?.text || "video"}` }),
  file: () => el("div", { class: "bk-file", text: "📄 a file" }),
};

// ctx: {onAction(action), confirm(confirmObject) -> Promise<bool>, people, channels}
export function renderBlocks(blocks, ctx) {
  const root = el("div", { class: "blocks" });
  blocks.forEach((block, index) => {
    const blockId = block.block_id || `block-${index}`;
    const render = BLOCKS[block.type];
    root.append(
      render ? render(block, blockId, ctx) : el("div", { class: "bk-unsupported", text: `[${block.type} block]` }),
    );
  });
  return root;
}

// Shows the errors a service answered a submission with, next to their inputs.
export function showErrors(container, errors) {
  for (const node of container.querySelectorAll(".bk-error")) {
    const text = errors?.[node.dataset.errorFor];
    node.hidden = !text;
    node.textContent = text || "";
  }
}

export { collectState };
