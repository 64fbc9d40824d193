"""Block Kit limits, checked the way the Slack Web API checks them.

Each failure is reported as Slack words it: a reason followed by a JSON pointer to the offending
value, e.g. "must be less than 3001 characters [json-pointer:/blocks/0/text/text]".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MESSAGE_MAX_BLOCKS = 50
MODAL_MAX_BLOCKS = 100
MARKDOWN_TOTAL_MAX = 12_000
BLOCK_ID_MAX = 255
ACTION_ID_MAX = 255
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
URL_MAX = 3000
PLACEHOLDER_MAX = 150
SELECT_OPTIONS_MAX = 100
OVERFLOW_OPTIONS_MAX = 5
CHOICE_OPTIONS_MAX = 10
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
INPUT_LABEL_MAX = 2000
INPUT_HINT_MAX = 2000
TEXT_INPUT_LENGTH_MAX = 3000
VIEW_TITLE_MAX = 24
VIEW_CALLBACK_ID_MAX = 255
VIEW_PRIVATE_METADATA_MAX = 3000

# Accepted as they are: their inner structure is not checked.
OPAQUE_BLOCK_TYPES = frozenset({"divider", "image", "rich_text", "table", "file", "video"})
SELECT_TYPES = frozenset({"static_select", "multi_static_select"})
CHOICE_TYPES = frozenset({"checkboxes", "radio_buttons"})
TEXT_INPUT_TYPES = frozenset({"plain_text_input"})
OTHER_ELEMENT_TYPES = frozenset(
    {
        "image",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "number_input",
        "email_text_input",
        "url_text_input",
        "rich_text_input",
        "file_input",
        "external_select",
        "multi_external_select",
        "users_select",
        "multi_users_select",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
        "workflow_button",
    }
)


def validate_blocks(
    blocks: Any,
    *,
    max_blocks: int = MESSAGE_MAX_BLOCKS,
    pointer: str = "/blocks",
) -> list[str]:
    """Every rule `blocks` breaks, as Slack's `errors` strings; empty when Slack would accept."""
    checker = _Checker()
    checker.blocks(blocks, max_blocks, pointer)
    return checker.errors


def validate_view(view: Any, pointer: str = "/view") -> list[str]:
    """Every rule a `views.open` / `views.update` payload breaks."""
    checker = _Checker()
    checker.view(view, pointer)
    return checker.errors


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self._block_handlers: dict[str, Callable[[dict[str, Any], str], None]] = {
            "section": self._section,
            "header": self._header,
            "context": self._context,
            "actions": self._actions,
            "input": self._input,
            "markdown": self._markdown,
        }
        self._markdown_total = 0

    def fail(self, reason: str, pointer: str) -> None:
        self.errors.append(f"{reason} [json-pointer:{pointer}]")

    # -- surfaces ---------------------------------------------------------------------------

    def blocks(self, blocks: Any, max_blocks: int, pointer: str) -> None:
        if not isinstance(blocks, list):
            self.fail("must provide an array", pointer)
            return
        if len(blocks) > max_blocks:
            self.fail(f"no more than {max_blocks} items allowed", pointer)
        seen_ids: set[str] = set()
        for index, block in enumerate(blocks):
            self._block(block, f"{pointer}/{index}", seen_ids)
        if self._markdown_total > MARKDOWN_TOTAL_MAX:
            self.fail(
                f"markdown blocks must total less than {MARKDOWN_TOTAL_MAX + 1} characters",
                pointer,
            )

    def view(self, view: Any, pointer: str) -> None:
        if not isinstance(view, dict):
            self.fail("must provide an object", pointer)
            return
        kind = view.get("type")
        if kind not in ("modal", "home"):
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.blocks(view.get("blocks"), MODAL_MAX_BLOCKS, f"{pointer}/blocks")
        self.length(view.get("callback_id"), VIEW_CALLBACK_ID_MAX, f"{pointer}/callback_id")
        self.length(
            view.get("private_metadata"),
            VIEW_PRIVATE_METADATA_MAX,
            f"{pointer}/private_metadata",
        )
        if kind == "modal":
            self._modal_chrome(view, pointer)

    def _modal_chrome(self, view: dict[str, Any], pointer: str) -> None:
        self.required_text(view, "title", VIEW_TITLE_MAX, pointer, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                self.text(view[key], VIEW_TITLE_MAX, f"{pointer}/{key}", plain_only=True)
        blocks = view.get("blocks") if isinstance(view.get("blocks"), list) else []
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and "submit" not in view:
            self.fail("must provide submit when the view has input blocks", f"{pointer}/submit")

    # -- blocks -----------------------------------------------------------------------------

    def _block(self, block: Any, pointer: str, seen_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail("must provide an object", pointer)
            return
        self._block_id(block, pointer, seen_ids)
        kind = block.get("type")
        handler = self._block_handlers.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            handler(block, pointer)
        elif kind not in OPAQUE_BLOCK_TYPES:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")

    def _block_id(self, block: dict[str, Any], pointer: str, seen_ids: set[str]) -> None:
        if "block_id" not in block:
            return
        block_id = block["block_id"]
        if not self.length(block_id, BLOCK_ID_MAX, f"{pointer}/block_id"):
            return
        if block_id in seen_ids:
            self.fail("block_id needs to be unique", f"{pointer}/block_id")
        seen_ids.add(block_id)

    def _section(self, block: dict[str, Any], pointer: str) -> None:
        if "text" not in block and "fields" not in block:
            self.fail("must define either `text` or `fields`", f"{pointer}/type")
        if "text" in block:
            self.text(block["text"], SECTION_TEXT_MAX, f"{pointer}/text")
        if "fields" in block:
            self._fields(block["fields"], f"{pointer}/fields")
        if "accessory" in block:
            self.element(block["accessory"], f"{pointer}/accessory")

    def _fields(self, fields: Any, pointer: str) -> None:
        if not isinstance(fields, list):
            self.fail("must provide an array", pointer)
            return
        if len(fields) > SECTION_FIELDS_MAX:
            self.fail(f"no more than {SECTION_FIELDS_MAX} items allowed", pointer)
        for index, field in enumerate(fields):
            self.text(field, SECTION_FIELD_TEXT_MAX, f"{pointer}/{index}")

    def _header(self, block: dict[str, Any], pointer: str) -> None:
        self.required_text(block, "text", HEADER_TEXT_MAX, pointer, plain_only=True)

    def _context(self, block: dict[str, Any], pointer: str) -> None:
        elements = self.required_list(block, "elements", CONTEXT_ELEMENTS_MAX, pointer)
        for index, element in enumerate(elements):
            element_pointer = f"{pointer}/elements/{index}"
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            self.text(element, CONTEXT_TEXT_MAX, element_pointer)

    def _actions(self, block: dict[str, Any], pointer: str) -> None:
        elements = self.required_list(block, "elements", ACTIONS_ELEMENTS_MAX, pointer)
        for index, element in enumerate(elements):
            self.element(element, f"{pointer}/elements/{index}")

    def _input(self, block: dict[str, Any], pointer: str) -> None:
        self.required_text(block, "label", INPUT_LABEL_MAX, pointer, plain_only=True)
        if "hint" in block:
            self.text(block["hint"], INPUT_HINT_MAX, f"{pointer}/hint", plain_only=True)
        if "element" not in block:
            self.fail("missing required field: element", pointer)
            return
        self.element(block["element"], f"{pointer}/element")

    def _markdown(self, block: dict[str, Any], pointer: str) -> None:
        text = block.get("text")
        if not isinstance(text, str):
            self.fail(
                "missing required field: text" if text is None else "must provide a string",
                f"{pointer}/text",
            )
            return
        self._markdown_total += len(text)
        self.length(text, MARKDOWN_TOTAL_MAX, f"{pointer}/text")

    # -- elements ---------------------------------------------------------------------------

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict):
            self.fail("must provide an object", pointer)
            return
        kind = element.get("type")
        self.length(element.get("action_id"), ACTION_ID_MAX, f"{pointer}/action_id")
        if "placeholder" in element:
            self.text(
                element["placeholder"], PLACEHOLDER_MAX, f"{pointer}/placeholder", plain_only=True
            )
        if kind == "button":
            self._button(element, pointer)
        elif kind in SELECT_TYPES:
            self._select(element, pointer)
        elif kind == "overflow":
            self.options(element, OVERFLOW_OPTIONS_MAX, pointer)
        elif kind in CHOICE_TYPES:
            self.options(element, CHOICE_OPTIONS_MAX, pointer, plain_only=False)
        elif kind in TEXT_INPUT_TYPES:
            self._text_input(element, pointer)
        elif kind not in OTHER_ELEMENT_TYPES:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")

    def _button(self, element: dict[str, Any], pointer: str) -> None:
        self.required_text(element, "text", BUTTON_TEXT_MAX, pointer, plain_only=True)
        self.length(element.get("value"), BUTTON_VALUE_MAX, f"{pointer}/value")
        self.length(element.get("url"), URL_MAX, f"{pointer}/url")
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            self.fail('must be one of "primary", "danger"', f"{pointer}/style")

    def _select(self, element: dict[str, Any], pointer: str) -> None:
        if "option_groups" in element:
            groups = element["option_groups"]
            for index, group in enumerate(groups if isinstance(groups, list) else []):
                if isinstance(group, dict):
                    self.options(group, SELECT_OPTIONS_MAX, f"{pointer}/option_groups/{index}")
            return
        self.options(element, SELECT_OPTIONS_MAX, pointer)

    def _text_input(self, element: dict[str, Any], pointer: str) -> None:
        for key in ("max_length", "min_length"):
            value = element.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                self.fail("must provide an integer", f"{pointer}/{key}")
            elif value > TEXT_INPUT_LENGTH_MAX:
                self.fail(f"must be less than {TEXT_INPUT_LENGTH_MAX + 1}", f"{pointer}/{key}")

    def options(
        self,
        holder: dict[str, Any],
        max_items: int,
        pointer: str,
        *,
        plain_only: bool = True,
    ) -> None:
        options = self.required_list(holder, "options", max_items, pointer)
        for index, option in enumerate(options):
            option_pointer = f"{pointer}/options/{index}"
            if not isinstance(option, dict):
                self.fail("must provide an object", option_pointer)
                continue
            self.required_text(
                option, "text", OPTION_TEXT_MAX, option_pointer, plain_only=plain_only
            )
            self.length(option.get("value"), OPTION_VALUE_MAX, f"{option_pointer}/value")

    # -- primitives -------------------------------------------------------------------------

    def required_text(
        self,
        holder: dict[str, Any],
        key: str,
        max_len: int,
        pointer: str,
        *,
        plain_only: bool = False,
    ) -> None:
        if key not in holder:
            self.fail(f"missing required field: {key}", pointer)
            return
        self.text(holder[key], max_len, f"{pointer}/{key}", plain_only=plain_only)

    def required_list(
        self,
        holder: dict[str, Any],
        key: str,
        max_items: int,
        pointer: str,
    ) -> list[Any]:
        items = holder.get(key)
        if items is None:
            self.fail(f"missing required field: {key}", pointer)
            return []
        if not isinstance(items, list):
            self.fail("must provide an array", f"{pointer}/{key}")
            return []
        if len(items) > max_items:
            self.fail(f"no more than {max_items} items allowed", f"{pointer}/{key}")
        return items

    def text(self, obj: Any, max_len: int, pointer: str, *, plain_only: bool = False) -> None:
        """A text composition object: {"type": "plain_text" | "mrkdwn", "text": "..."}."""
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            names = ", ".join(f'"{name}"' for name in allowed)
            self.fail(f"must be one of {names}", f"{pointer}/type")
        text = obj.get("text")
        if not isinstance(text, str):
            self.fail("must provide a string", f"{pointer}/text")
        elif not text:
            self.fail("must be more than 0 characters", f"{pointer}/text")
        else:
            self.length(text, max_len, f"{pointer}/text")

    def length(self, value: Any, max_len: int, pointer: str) -> bool:
        """True when `value` is absent or a string within `max_len` characters."""
        if value is None:
            return True
        if not isinstance(value, str):
            self.fail("must provide a string", pointer)
            return False
        if len(value) > max_len:
            self.fail(f"must be less than {max_len + 1} characters", pointer)
            return False
        return True
