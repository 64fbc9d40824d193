"""Agent Markdown -> Slack mrkdwn.

Code (inline and fenced) is kept verbatim. Slack reads `&`, `<` and `>` as markup everywhere, code
included, so they are entity-escaped everywhere; Slack shows the entities as the characters, so
code still reads exactly as written. Slack's own tokens (`<@U1>`, `<#C1>`, `<!here>`,
`<url|text>`) pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

FENCE = "```"
RULE = "──────────"

_ENTITY_AMP_RE = re.compile(r"&(?!(?:amp|lt|gt);)")
_FENCE_OPEN_RE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_BULLET_RE = re.compile(r"^(\s*)[-*+]\s+(?:\[( |x|X)\]\s+)?(.*)$")
_QUOTE_RE = re.compile(r"^(\s*(?:>\s?)+)(.*)$")
_RULE_RE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_TABLE_DELIMITER_RE = re.compile(r"^\|?:?-+:?(?:\|:?-+:?)*\|?$")
_CELL_SPLIT_RE = re.compile(r"(?<!\\)\|")

# Spans that must not be touched by the inline rules: code, Slack tokens, links, bare URLs and
# backslash escapes. Each becomes a placeholder while the rest is converted.
_PROTECTED_RE = re.compile(
    r"(?P<code3>```.+?```)"
    r"|(?P<code>`[^`\n]+`)"
    r"|(?P<token><(?:[@#!][^<>\s|]+|(?:https?|mailto|tel|slack):[^<>\s|]+)(?:\|[^<>\n]*)?>)"
    r"|(?P<link>!?\[(?P<label>[^\]\n]*)\]\((?P<url>[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)"
    r"(?:\s+\"[^\"\n]*\")?\))"
    r"|(?P<url_bare>https?://[^\s<>]*[^\s<>.,;:!?)\]'\"])"
    r"|(?P<escaped>\\[\\`*_{}\[\]()#+\-.!|~>])"
)
_BOLD_ITALIC_RE = re.compile(r"\*\*\*(?!\s)(.+?)(?<!\s)\*\*\*")
_BOLD_RE = re.compile(r"\*\*(?!\s)(.+?)(?<!\s)\*\*|(?<!\w)__(?!\s)(.+?)(?<!\s)__(?!\w)")
_ITALIC_RE = re.compile(r"(?<![\w*])\*(?![\s*])([^*\n]+?)(?<![\s*])\*(?![\w*])")
_STRIKE_RE = re.compile(r"~~(?!\s)(.+?)(?<!\s)~~")
_PLACEHOLDER_RE = re.compile("\x00(\\d+)\x00")
# A line with none of these has nothing to escape, protect or convert: most lines of prose.
_MARKUP_RE = re.compile(r"[*_~`<>&\[\\]|://")
_BOLD_MARK = "\x01"


def escape(text: str) -> str:
    """Escape Slack's three control characters, leaving already-escaped entities alone."""
    return _ENTITY_AMP_RE.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def escape_code(text: str) -> str:
    """Escape code for a mrkdwn code span: entities always (code shows them verbatim)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_block(code: str) -> str:
    """A fenced mrkdwn code block showing `code` verbatim."""
    return f"{FENCE}\n{defuse_fences(escape_code(code))}\n{FENCE}"


def defuse_fences(code: str) -> str:
    """Break up ``` inside code so it cannot end the block early (a zero-width space)."""
    return code.replace(FENCE, "``\u200b`")


def to_mrkdwn(markdown: str) -> str:
    """Convert agent Markdown to Slack mrkdwn."""
    lines = markdown.replace("\r\n", "\n").replace("\x00", "").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _opens_fence(lines[i]):
            i = _convert_fence(lines, i, out)
        elif _starts_table(lines, i):
            i = _convert_table(lines, i, out)
        else:
            out.append(_convert_line(lines[i]))
            i += 1
    return "\n".join(out)


# --- code fences -------------------------------------------------------------------------------


def _opens_fence(line: str) -> bool:
    match = _FENCE_OPEN_RE.match(line)
    return bool(match) and match.group(1)[0] not in match.group(2)


def _convert_fence(lines: list[str], start: int, out: list[str]) -> int:
    """Emit the code block opening at `start`; return the index after it (unclosed: the end)."""
    marker = _FENCE_OPEN_RE.match(lines[start]).group(1)  # type: ignore[union-attr]
    end = start + 1
    while end < len(lines) and not _closes_fence(lines[end], marker):
        end += 1
    code = "\n".join(lines[start + 1 : end])
    if code.strip():  # the language tag is dropped: Slack would print it as code
        out.append(code_block(code))
    return end + 1


def _closes_fence(line: str, marker: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(marker) and not stripped.strip(marker[0])


# --- tables ------------------------------------------------------------------------------------


def _starts_table(lines: list[str], i: int) -> bool:
    return (
        i + 1 < len(lines)
        and "|" in lines[i]
        and "|" in lines[i + 1]
        and bool(_TABLE_DELIMITER_RE.match(re.sub(r"\s", "", lines[i + 1])))
    )


def _convert_table(lines: list[str], start: int, out: list[str]) -> int:
    """Emit the table at `start` as aligned columns in a code block; return the index after it."""
    rows = [_cells(lines[start])]
    end = start + 2
    while end < len(lines) and "|" in lines[end] and lines[end].strip():
        rows.append(_cells(lines[end]))
        end += 1
    out.append(code_block(_aligned(rows)))
    return end


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [_plain_cell(cell) for cell in _CELL_SPLIT_RE.split(line)]


def _plain_cell(cell: str) -> str:
    cell = re.sub(r"\[([^\]]*)\]\(([^)\s]*)\)", r"\1 (\2)", cell.strip())
    return re.sub(r"\*\*|__|`", "", cell).replace("\\|", "|")


def _aligned(rows: list[list[str]]) -> str:
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    widths = [max(len(row[c]) for row in rows) for c in range(columns)]

    def line(row: list[str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(rows[0]).rstrip(), rule, *(line(row).rstrip() for row in rows[1:])])


# --- lines and inline spans --------------------------------------------------------------------


def _convert_line(line: str) -> str:
    if _RULE_RE.match(line):
        return RULE
    heading = _HEADING_RE.match(line)
    if heading:
        title = re.sub(r"\*\*|__", "", heading.group(1))
        return f"*{_convert_inline(title)}*" if title.strip() else ""
    quote = _QUOTE_RE.match(line)
    if quote:  # Slack's quote marker is a raw ">" at the start of the line
        return ">" * quote.group(1).count(">") + " " + _convert_line(quote.group(2))
    bullet = _BULLET_RE.match(line)
    if bullet:
        indent, task, item = bullet.groups()
        mark = "•" if task is None else ("☐" if task == " " else "☑")
        return f"{indent}{mark} {_convert_inline(item)}"
    return _convert_inline(line)


def _convert_inline(text: str) -> str:
    if not _MARKUP_RE.search(text):
        return text
    saved: list[str] = []

    def save(match: re.Match[str]) -> str:
        saved.append(_protected(match))
        return f"\x00{len(saved) - 1}\x00"

    text = _PROTECTED_RE.sub(save, text)
    text = _emphasis(escape(text))
    return _PLACEHOLDER_RE.sub(lambda m: saved[int(m.group(1))], text)


def _protected(match: re.Match[str]) -> str:
    # For a link, lastgroup names the whole link: its inner groups close before it does.
    return _PROTECTED_HANDLERS[match.lastgroup or "escaped"](match)


def _link(match: re.Match[str]) -> str:
    url = escape(match.group("url")).replace("|", "%7C")
    label = escape(match.group("label").strip()).replace("|", "¦")
    return f"<{url}|{label}>" if label else f"<{url}>"


_PROTECTED_HANDLERS: dict[str, Callable[[re.Match[str]], str]] = {
    "code3": lambda m: FENCE + escape_code(m.group(0)[3:-3]) + FENCE,
    "code": lambda m: escape_code(m.group(0)),
    "token": lambda m: _ENTITY_AMP_RE.sub("&amp;", m.group(0)),
    "link": _link,
    "url_bare": lambda m: escape(m.group(0)),
    "escaped": lambda m: escape(m.group(0)[1]),
}


def _emphasis(text: str) -> str:
    text = _BOLD_ITALIC_RE.sub(lambda m: f"{_BOLD_MARK}_{m.group(1)}_{_BOLD_MARK}", text)
    text = _BOLD_RE.sub(lambda m: _BOLD_MARK + (m.group(1) or m.group(2)) + _BOLD_MARK, text)
    text = _ITALIC_RE.sub(r"_\1_", text)
    text = _STRIKE_RE.sub(r"~\1~", text)
    return text.replace(_BOLD_MARK, "*")
