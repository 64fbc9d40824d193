// Text as Slack draws it: mrkdwn (sections, context), Markdown (markdown blocks), rich text.
// Every function escapes what it is given; the HTML it returns is safe to insert.

const EMOJI = {
  thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎", white_check_mark: "✅",
  heavy_check_mark: "✔️", x: "❌", warning: "⚠️", hourglass: "⌛", hourglass_flowing_sand: "⏳",
  hand: "✋", raised_hand: "✋", wrench: "🔧", rocket: "🚀", tada: "🎉", eyes: "👀", sos: "🆘",
  arrows_counterclockwise: "🔄", memo: "📝", bulb: "💡", no_entry: "⛔", robot_face: "🤖",
  information_source: "ℹ️", speech_balloon: "💬", alarm_clock: "⏰", stopwatch: "⏱️",
  ballot_box_with_check: "☑️", large_green_circle: "🟢", red_circle: "🔴", smile: "😄",
  slightly_smiling_face: "🙂", pray: "🙏", fire: "🔥", lock: "🔒", mag: "🔍", clipboard: "📋",
};

let NAMES = {};

export function setNames(names) {
  NAMES = names || {};
}

export function escapeHtml(text) {
  return String(text ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function safeUrl(url) {
  const text = String(url || "").trim();
  return /^(https?:|mailto:|slack:)/i.test(text) ? text : "#";
}

function link(url, label) {
  const href = escapeHtml(safeUrl(url));
  return `<a href="${href}" target="_blank" rel="noopener noreferrer">${label}</a>`;
}

export function mention(id) {
  return `<span class="mention">@${escapeHtml(NAMES[id] || id)}</span>`;
}

export function emoji(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

// Placeholders keep finished HTML out of the later passes.
class Held {
  constructor() {
    this.parts = [];
  }
  hold(html) {
    this.parts.push(html);
    return `\u0000${this.parts.length - 1}\u0000`;
  }
  release(text) {
    return text.replace(/\u0000(\d+)\u0000/g, (_, n) => this.parts[Number(n)]);
  }
}

function special(inner) {
  const [target, label] = inner.split("|", 2);
  if (target.startsWith("@")) return mention(target.slice(1));
  if (target.startsWith("#")) {
    return `<span class="mention">#${escapeHtml(label || target.slice(1))}</span>`;
  }
  if (target.startsWith("!subteam^")) {
    return `<span class="mention">${escapeHtml(label || "@" + target.slice(9))}</span>`;
  }
  if (target.startsWith("!")) {
    return `<span class="mention broadcast">@${escapeHtml(target.slice(1).split("^")[0])}</span>`;
  }
  if (/^(https?:|mailto:)/i.test(target)) return link(target, escapeHtml(label || target));
  return null;
}

function inlineMrkdwn(text, held) {
  let out = text.replace(/`([^`\n]+)`/g, (_, code) => held.hold(`<code>${escapeHtml(code)}</code>`));
  out = out.replace(/<([^<>\n]+)>/g, (whole, inner) => {
    const html = special(inner);
    return html === null ? whole : held.hold(html);
  });
  out = escapeHtml(out);
  out = out.replace(/(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?!\w)/g, "$1<b>$2</b>");
  out = out.replace(/(^|[^\w_])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1<i>$2</i>");
  out = out.replace(/(^|[^\w~])~(?!\s)([^~\n]+?)~(?!\w)/g, "$1<s>$2</s>");
  return emoji(out);
}

// Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`, ```blocks```, > quotes, <links|text>.
export function mrkdwn(text) {
  const held = new Held();
  const source = String(text ?? "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  const parts = source.split("```");
  const isCodeAt = (i) => i % 2 === 1 && i < parts.length - 1;
  const out = [];
  parts.forEach((part, index) => {
    if (isCodeAt(index)) {
      out.push(`<pre>${escapeHtml(part.replace(/^\n/, "").replace(/\n$/, ""))}</pre>`);
      return;
    }
    let piece = index % 2 === 1 ? "```" + part : part; // a fence never closed is text
    if (isCodeAt(index - 1)) piece = piece.replace(/^\n/, "");
    if (isCodeAt(index + 1)) piece = piece.replace(/\n$/, "");
    if (!piece) return;
    const lines = piece.split("\n").map((line) => {
      const quote = /^>\s?(.*)$/.exec(line);
      if (quote) return `<blockquote>${inlineMrkdwn(quote[1], held)}</blockquote>`;
      return inlineMrkdwn(line, held) + "<br>";
    });
    out.push(lines.join("").replace(/<br>$/, ""));
  });
  return held.release(out.join(""));
}

export function plainText(obj) {
  if (!obj) return "";
  const text = escapeHtml(obj.text ?? "");
  return obj.emoji === false ? text : emoji(text);
}

// A text object: mrkdwn or plain_text.
export function textObject(obj) {
  if (!obj) return "";
  if (typeof obj === "string") return mrkdwn(obj);
  return obj.type === "mrkdwn" ? mrkdwn(obj.text) : plainText(obj);
}

// --- Markdown (the `markdown` block, and a native stream's text) ---------------------------

function inlineMarkdown(text, held) {
  let out = text.replace(/`([^`\n]+)`/g, (_, code) => held.hold(`<code>${escapeHtml(code)}</code>`));
  out = out.replace(/\[([^\]\n]+)\]\(([^)\s]+)\)/g, (_, label, url) =>
    held.hold(link(url, escapeHtml(label))),
  );
  out = out.replace(/<(https?:[^<>\s|]+)\|([^<>]+)>/g, (_, url, label) => held.hold(link(url, escapeHtml(label))));
  out = out.replace(/<@([A-Z0-9]+)>/g, (_, id) => held.hold(mention(id)));
  out = out.replace(/(^|[\s(])(https?:\/\/[^\s<>()]+)/g, (_, before, url) => before + held.hold(link(url, escapeHtml(url))));
  out = escapeHtml(out);
  out = out.replace(/(\*\*|__)(?!\s)(.+?)\1/g, "<b>$2</b>");
  out = out.replace(/(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?!\w)/g, "$1<i>$2</i>");
  out = out.replace(/(^|[^\w_])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1<i>$2</i>");
  out = out.replace(/~~(.+?)~~/g, "<s>$1</s>");
  return held.release(emoji(out));
}

function tableHtml(rows, held) {
  const cells = (line) => line.replace(/^\s*\|/, "").replace(/\|\s*$/, "").split("|").map((c) => c.trim());
  const [head, , ...body] = rows;
  const th = cells(head).map((c) => `<th>${inlineMarkdown(c, held)}</th>`).join("");
  const trs = body.map((row) => `<tr>${cells(row).map((c) => `<td>${inlineMarkdown(c, held)}</td>`).join("")}</tr>`);
  return `<table class="md-table"><thead><tr>${th}</tr></thead><tbody>${trs.join("")}</tbody></table>`;
}

export function markdown(text) {
  const held = new Held();
  const lines = String(text ?? "").split("\n");
  const out = [];
  let paragraph = [];
  let list = null; // {tag, items: [[indent, html]]}
  const flushParagraph = () => {
    if (paragraph.length) out.push(`<p>${paragraph.join("<br>")}</p>`);
    paragraph = [];
  };
  const flushList = () => {
    if (!list) return;
    const items = list.items.map(([indent, html]) => `<li class="indent-${Math.min(indent, 4)}">${html}</li>`);
    out.push(`<${list.tag}>${items.join("")}</${list.tag}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s*```/.exec(line);
    if (fence) {
      flushParagraph();
      flushList();
      const code = [];
      i++;
      while (i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i++]);
      out.push(`<pre>${escapeHtml(code.join("\n"))}</pre>`);
      continue;
    }
    if (/^\s*\|.*\|\s*$/.test(line) && /^\s*\|?\s*:?-{2,}/.test(lines[i + 1] || "")) {
      flushParagraph();
      flushList();
      const rows = [];
      while (i < lines.length && /^\s*\|.*\|\s*$/.test(lines[i])) rows.push(lines[i++]);
      i--;
      out.push(tableHtml(rows, held));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    const bullet = /^(\s*)[-*+•]\s+(.*)$/.exec(line);
    const ordered = /^(\s*)\d+[.)]\s+(.*)$/.exec(line);
    const quote = /^>\s?(.*)$/.exec(line);
    if (heading) {
      flushParagraph();
      flushList();
      out.push(`<div class="md-h md-h${heading[1].length}">${inlineMarkdown(heading[2], held)}</div>`);
    } else if (bullet || ordered) {
      flushParagraph();
      const match = bullet || ordered;
      const tag = bullet ? "ul" : "ol";
      if (list && list.tag !== tag) flushList();
      list = list || { tag, items: [] };
      list.items.push([Math.floor(match[1].length / 2), inlineMarkdown(match[2], held)]);
    } else if (/^\s*(-{3,}|\*{3,}|_{3,})\s*$/.test(line)) {
      flushParagraph();
      flushList();
      out.push("<hr>");
    } else if (quote) {
      flushParagraph();
      flushList();
      out.push(`<blockquote>${inlineMarkdown(quote[1], held)}</blockquote>`);
    } else if (!line.trim()) {
      flushParagraph();
      flushList();
    } else {
      flushList();
      paragraph.push(inlineMarkdown(line, held));
    }
  }
  flushParagraph();
  flushList();
  return out.join("");
}

// --- rich text ---------------------------------------------------------------------------------

function styled(html, style) {
  if (!style) return html;
  let out = html;
  if (style.code) out = `<code>${out}</code>`;
  if (style.bold) out = `<b>${out}</b>`;
  if (style.italic) out = `<i>${out}</i>`;
  if (style.strike) out = `<s>${out}</s>`;
  return out;
}

function richInline(element) {
  switch (element.type) {
    case "text":
      return styled(escapeHtml(element.text), element.style);
    case "link":
      return styled(link(element.url, escapeHtml(element.text || element.url)), element.style);
    case "user":
      return mention(element.user_id);
    case "usergroup":
      return `<span class="mention">@${escapeHtml(element.usergroup_id)}</span>`;
    case "channel":
      return `<span class="mention">#${escapeHtml(element.channel_id)}</span>`;
    case "broadcast":
      return `<span class="mention broadcast">@${escapeHtml(element.range)}</span>`;
    case "emoji":
      return element.unicode
        ? String.fromCodePoint(...element.unicode.split("-").map((h) => parseInt(h, 16)))
        : EMOJI[element.name] || `:${escapeHtml(element.name)}:`;
    case "date":
      return escapeHtml(element.fallback || new Date(element.timestamp * 1000).toLocaleString());
    case "color":
      return `<span class="swatch" style="background:${escapeHtml(element.value)}"></span>${escapeHtml(element.value)}`;
    default:
      return "";
  }
}

function richInlines(elements) {
  return (elements || []).map(richInline).join("");
}

export function richText(block) {
  return (block.elements || [])
    .map((element) => {
      switch (element.type) {
        case "rich_text_section":
          return `<div class="rt-section">${richInlines(element.elements)}</div>`;
        case "rich_text_preformatted":
          return `<pre>${richInlines(element.elements)}</pre>`;
        case "rich_text_quote":
          return `<blockquote>${richInlines(element.elements)}</blockquote>`;
        case "rich_text_list": {
          const tag = element.style === "ordered" ? "ol" : "ul";
          const items = (element.elements || []).map((item) => `<li>${richInlines(item.elements)}</li>`);
          return `<${tag} class="indent-${element.indent || 0}">${items.join("")}</${tag}>`;
        }
        default:
          return "";
      }
    })
    .join("");
}
