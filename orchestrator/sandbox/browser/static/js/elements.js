// Block Kit's interactive elements (buttons, selects, inputs, pickers, choices) and the
// `state.values` Slack sends with a click or a submitted modal.

import { el, uniqueId } from "./dom.js";
import { plainText, textObject } from "./markup.js";

const STATEFUL = "data-state";

function optionLabel(option) {
  return option?.text?.text ?? option?.value ?? "";
}

function allOptions(element) {
  const options = [...(element.options || [])];
  for (const group of element.option_groups || []) options.push(...(group.options || []));
  return options;
}

function placeholder(element, fallback) {
  return element.placeholder?.text || fallback;
}

// The element's node keeps a function reading its state as Slack reports it.
function stateful(node, blockId, actionId, read) {
  node.setAttribute(STATEFUL, "");
  node.dataset.blockId = blockId;
  node.dataset.actionId = actionId;
  node.readState = read;
  return node;
}

function button(element, blockId, ctx) {
  const style = element.style ? ` bk-button-${element.style}` : "";
  const node = el("button", {
    type: "button",
    class: `bk-button${style}`,
    html: plainText(element.text),
    "data-action-id": element.action_id || "",
  });
  node.addEventListener("click", async () => {
    if (element.url) window.open(element.url, "_blank", "noopener");
    if (element.confirm && !(await ctx.confirm(element.confirm))) return;
    ctx.onAction({ block_id: blockId, action_id: element.action_id || "", value: element.value || "" });
  });
  return node;
}

function staticSelect(element, blockId, ctx, id, multi) {
  const options = allOptions(element);
  const initial = multi
    ? new Set((element.initial_options || []).map((o) => o.value))
    : new Set(element.initial_option ? [element.initial_option.value] : []);
  const select = el("select", { id, class: "bk-select", multiple: multi || undefined });
  if (!multi) select.append(el("option", { value: "", text: placeholder(element, "Select an item") }));
  const addOptions = (parent, list) => {
    for (const option of list) {
      parent.append(el("option", { value: option.value, selected: initial.has(option.value) || undefined, text: optionLabel(option) }));
    }
  };
  if (element.option_groups) {
    for (const group of element.option_groups) {
      const optgroup = el("optgroup", { label: group.label?.text || "" });
      addOptions(optgroup, group.options || []);
      select.append(optgroup);
    }
  } else {
    addOptions(select, element.options || []);
  }
  if (multi) select.size = Math.min(Math.max(options.length, 2), 6);
  const byValue = (value) => options.find((o) => o.value === value);
  return stateful(select, blockId, element.action_id, () =>
    multi
      ? { type: element.type, selected_options: [...select.selectedOptions].map((o) => byValue(o.value)) }
      : { type: element.type, selected_option: select.value ? byValue(select.value) : null },
  );
}

function peopleOrChannelsSelect(element, blockId, ctx, id) {
  const multi = element.type.startsWith("multi_");
  const kind = element.type.replace(/^multi_/, "").replace(/_select$/, "");
  const items = kind === "users" ? ctx.people.map((p) => [p.id, p.name]) : ctx.channels.map((c) => [c.id, `#${c.name}`]);
  const initial = new Set(
    [].concat(element[`initial_${kind === "users" ? "user" : kind === "channels" ? "channel" : "conversation"}${multi ? "s" : ""}`] || []),
  );
  const select = el("select", { id, class: "bk-select", multiple: multi || undefined });
  if (!multi) select.append(el("option", { value: "", text: placeholder(element, "Select…") }));
  for (const [value, label] of items) select.append(el("option", { value, text: label, selected: initial.has(value) || undefined }));
  const key = { users: "user", conversations: "conversation", channels: "channel" }[kind];
  return stateful(select, blockId, element.action_id, () =>
    multi
      ? { type: element.type, [`selected_${key}s`]: [...select.selectedOptions].map((o) => o.value) }
      : { type: element.type, [`selected_${key}`]: select.value || null },
  );
}

function choices(element, blockId, id) {
  const radio = element.type === "radio_buttons";
  const options = element.options || [];
  const initial = radio
    ? new Set(element.initial_option ? [element.initial_option.value] : [])
    : new Set((element.initial_options || []).map((o) => o.value));
  const group = el("div", { class: "bk-choices", role: radio ? "radiogroup" : "group", id });
  const name = uniqueId("choice");
  const inputs = options.map((option) => {
    const input = el("input", { type: radio ? "radio" : "checkbox", name, value: option.value, checked: initial.has(option.value) || undefined });
    group.append(
      el("label", { class: "bk-choice" }, input, el("span", { html: textObject(option.text) }),
        option.description ? el("div", { class: "bk-choice-description", html: textObject(option.description) }) : null),
    );
    return [input, option];
  });
  return stateful(group, blockId, element.action_id, () => {
    const picked = inputs.filter(([input]) => input.checked).map(([, option]) => option);
    return radio ? { type: element.type, selected_option: picked[0] || null } : { type: element.type, selected_options: picked };
  });
}

function textInput(element, blockId, id) {
  const multiline = element.type === "plain_text_input" && element.multiline;
  const types = { email_text_input: "email", url_text_input: "url", number_input: "number" };
  const attrs = {
    id,
    class: multiline ? "bk-textarea" : "bk-text-input",
    placeholder: placeholder(element, ""),
    maxlength: element.max_length,
    minlength: element.min_length,
  };
  const node = multiline ? el("textarea", { ...attrs, rows: 3 }) : el("input", { ...attrs, type: types[element.type] || "text" });
  if (element.type === "number_input") {
    node.step = element.is_decimal_allowed ? "any" : "1";
    if (element.min_value !== undefined) node.min = element.min_value;
    if (element.max_value !== undefined) node.max = element.max_value;
  }
  node.value = element.initial_value ?? (element.type === "rich_text_input" ? "" : "");
  if (element.type === "rich_text_input") {
    return stateful(node, blockId, element.action_id, () => ({
      type: element.type,
      rich_text_value: { type: "rich_text", elements: [{ type: "rich_text_section", elements: [{ type: "text", text: node.value }] }] },
    }));
  }
  return stateful(node, blockId, element.action_id, () => ({ type: element.type, value: node.value === "" ? null : node.value }));
}

function picker(element, blockId, id) {
  const kinds = { datepicker: ["date", "initial_date", "selected_date"], timepicker: ["time", "initial_time", "selected_time"] };
  if (element.type === "datetimepicker") {
    const node = el("input", { id, type: "datetime-local", class: "bk-text-input" });
    if (element.initial_date_time) node.value = new Date(element.initial_date_time * 1000).toISOString().slice(0, 16);
    return stateful(node, blockId, element.action_id, () => ({
      type: element.type,
      selected_date_time: node.value ? Math.floor(new Date(node.value).getTime() / 1000) : null,
    }));
  }
  const [type, initial, selected] = kinds[element.type];
  const node = el("input", { id, type, class: "bk-text-input bk-picker" });
  if (element[initial]) node.value = element[initial];
  return stateful(node, blockId, element.action_id, () => ({ type: element.type, [selected]: node.value || null }));
}

function overflow(element, blockId, ctx) {
  const menu = el("div", { class: "bk-overflow-menu", hidden: true });
  const toggle = el("button", { type: "button", class: "bk-button bk-overflow", "aria-label": "More actions", text: "⋮" });
  toggle.addEventListener("click", () => (menu.hidden = !menu.hidden));
  for (const option of element.options || []) {
    menu.append(
      el("button", {
        type: "button",
        class: "bk-overflow-item",
        html: plainText(option.text),
        onclick: () => {
          menu.hidden = true;
          ctx.onAction({ block_id: blockId, action_id: element.action_id, value: option.value, selection: { type: "overflow", selected_option: option } });
        },
      }),
    );
  }
  return el("div", { class: "bk-overflow-wrap" }, toggle, menu);
}

// Renders one element; `dispatch` says whether a change is sent at once (actions blocks,
// section accessories, inputs with dispatch_action) or only read with the next click.
export function renderElement(element, blockId, ctx, { dispatch = false, id = uniqueId("el") } = {}) {
  let node;
  switch (element.type) {
    case "button":
      return button(element, blockId, ctx);
    case "workflow_button":
      return el("button", { type: "button", class: "bk-button", html: plainText(element.text), disabled: true, title: "Workflows do not run in the sandbox" });
    case "overflow":
      return overflow(element, blockId, ctx);
    case "image":
      return el("img", { class: "bk-accessory-image", src: element.image_url, alt: element.alt_text || "" });
    case "static_select":
    case "multi_static_select":
      node = staticSelect(element, blockId, ctx, id, element.type === "multi_static_select");
      break;
    case "users_select":
    case "multi_users_select":
    case "conversations_select":
    case "multi_conversations_select":
    case "channels_select":
    case "multi_channels_select":
      node = peopleOrChannelsSelect(element, blockId, ctx, id);
      break;
    case "radio_buttons":
    case "checkboxes":
      node = choices(element, blockId, id);
      break;
    case "plain_text_input":
    case "email_text_input":
    case "url_text_input":
    case "number_input":
    case "rich_text_input":
      node = textInput(element, blockId, id);
      break;
    case "datepicker":
    case "timepicker":
    case "datetimepicker":
      node = picker(element, blockId, id);
      break;
    default:
      return el("span", { class: "bk-unsupported", text: `[${element.type} is not shown in the sandbox]` });
  }
  if (dispatch) {
    node.addEventListener("change", () =>
      ctx.onAction({ block_id: blockId, action_id: element.action_id, value: "", selection: node.readState() }),
    );
  }
  return node;
}

// `state.values`: {block_id: {action_id: {type, value | selected_… }}} of every input inside.
export function collectState(container) {
  const values = {};
  for (const node of container.querySelectorAll(`[${STATEFUL}]`)) {
    const { blockId, actionId } = node.dataset;
    values[blockId] = values[blockId] || {};
    values[blockId][actionId] = node.readState();
  }
  return values;
}
