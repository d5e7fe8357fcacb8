"""Text and keyboard handling of the emulator: HTML entity parsing, reply_markup checks, command entities."""

from __future__ import annotations

import html
import json
import re
from typing import Any


class ApiError(Exception):
    """A Telegram-shaped API error: becomes {"ok": false, "error_code": ..., "description": ...}."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would answer with."""
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(what: str) -> ApiError:
    """400 with Telegram's "Bad Request: ..." prefix."""
    return ApiError(400, f"Bad Request: {what}")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: Telegram measures entity offsets and text limits this way."""
    return len(text.encode("utf-16-le")) // 2


# HTML tags Telegram understands, mapped to the entity type they produce.
_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
# <tg-time format="...">: empty, "r", or any of w, d|D, t|T in that order (Bot API "Date-time entity formatting").
_DATE_TIME_FORMAT = re.compile(r"r|w?[dD]?[tT]?")
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^<>]*)?)\s*(/?)>")
_ATTR_RE = re.compile(r"""([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_ENTITY_RE = re.compile(r"&(#\d+|#x[0-9A-Fa-f]+|lt|gt|amp|quot);")


def _attrs(raw: str) -> dict[str, str]:
    return {m.group(1).lower(): html.unescape(next(g for g in m.groups()[1:] if g is not None)) for m in _ATTR_RE.finditer(raw)}


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Strip Telegram HTML to plain text + entities; raise "can't parse entities" like Telegram on bad markup."""
    out: list[str] = []
    out_len = 0  # UTF-16 length of the plain text emitted so far
    stack: list[tuple[str, dict[str, str], int]] = []
    entities: list[dict[str, Any]] = []
    pos = 0

    def emit(chunk: str) -> None:
        nonlocal out_len
        # html.unescape alone knows hundreds of named entities; Telegram only 4, so keep the others literal.
        plain = _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), chunk) if "&" in chunk else chunk
        out.append(plain)
        out_len += utf16_len(plain)

    while True:
        lt = text.find("<", pos)
        if lt < 0:
            emit(text[pos:])
            break
        emit(text[pos:lt])
        m = _TAG_RE.match(text, lt)
        if not m:
            name = re.match(r"</?([^\s<>]*)", text[lt:])
            raise bad_request(
                f'can\'t parse entities: Unsupported start tag "{name.group(1) if name else ""}" '
                f"at byte offset {_byte_offset(text, lt)}"
            )
        closing, name, raw_attrs, self_closing = m.group(1), m.group(2).lower(), m.group(3), m.group(4)
        if name not in _HTML_TAGS or self_closing:
            kind = "end" if closing else "start"
            raise bad_request(f'can\'t parse entities: Unsupported {kind} tag "{name}" at byte offset {_byte_offset(text, lt)}')
        if not closing:
            attrs = _attrs(raw_attrs)
            if re.search(r"(?:^|\s)expandable(?:\s|=|$)", raw_attrs):
                attrs["expandable"] = ""  # a bare attribute: <blockquote expandable>
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise bad_request(f'can\'t parse entities: Unsupported start tag "span" at byte offset {_byte_offset(text, lt)}')
            stack.append((name, attrs, out_len))
        else:
            if not stack:
                raise bad_request(f"can't parse entities: Unexpected end tag at byte offset {_byte_offset(text, lt)}")
            open_name, attrs, start = stack.pop()
            if open_name != name:
                raise bad_request(
                    f"can't parse entities: Unmatched end tag at byte offset {_byte_offset(text, lt)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            _add_entity(entities, stack, open_name, attrs, start, out_len - start)
        pos = m.end()
    if stack:
        raise bad_request(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    # Telegram lists entities by offset, outer ones first; entities were appended as their tags
    # closed (inner first), so on a tie the later one is the outer one.
    order = sorted(range(len(entities)), key=lambda i: (entities[i]["offset"], -entities[i]["length"], -i))
    return "".join(out), [entities[i] for i in order]


def _add_entity(
    entities: list[dict[str, Any]],
    stack: list[tuple[str, dict[str, str], int]],
    name: str,
    attrs: dict[str, str],
    offset: int,
    length: int,
) -> None:
    if length <= 0:
        return  # Telegram silently drops empty entities
    etype = _HTML_TAGS[name]
    entity: dict[str, Any] = {"offset": offset, "length": length, "type": etype}
    if name == "a":
        href = attrs.get("href", "")
        if not href:
            return
        entity["url"] = href
    elif name == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    elif name == "tg-time":
        unix, fmt = attrs.get("unix", ""), attrs.get("format", "")
        if not unix.isdigit():
            raise bad_request("can't parse entities: tg-time needs a unix attribute with the Unix time")
        if not _DATE_TIME_FORMAT.fullmatch(fmt):
            raise bad_request(f'can\'t parse entities: invalid date-time format "{fmt}"')
        entity["unix_time"] = int(unix)
        if fmt:
            entity["date_time_format"] = fmt
    elif name == "code" and stack and stack[-1][0] == "pre":
        # <pre><code class="language-x"> is a single pre entity with a language.
        lang = attrs.get("class", "")
        if lang.startswith("language-"):
            stack[-1][1]["_language"] = lang[len("language-") :]
        return
    elif name == "pre" and attrs.get("_language"):
        entity["language"] = attrs["_language"]
    entities.append(entity)


PARSE_MODES = {"html": "HTML", "markdown": "Markdown", "markdownv2": "MarkdownV2"}


def render_text(text: str, parse_mode: str | None, entities: Any = None) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities) as Telegram would store them for a message."""
    if parse_mode:
        mode = PARSE_MODES.get(str(parse_mode).lower())
        if mode is None:
            raise bad_request(f"unsupported parse_mode {parse_mode}")
        if mode == "HTML":
            return parse_html(text)
        # Markdown flavours are accepted as-is (no entity parsing): good enough for the emulator.
        return text, []
    if entities:
        parsed = json_param(entities, "entities")
        if not isinstance(parsed, list):
            raise bad_request("can't parse entities JSON object")
        return text, parsed
    return text, []


def json_param(value: Any, name: str) -> Any:
    """Decode a parameter that arrives as a JSON string (query/form) or as an object (JSON body)."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return value


# Inline buttons need exactly one "action" field besides text.
_BUTTON_ACTIONS = {
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "copy_text",
}


def parse_reply_markup(value: Any, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate reply_markup like Telegram does; empty inline keyboards normalise to None."""
    if value is None or value == "" or value == "null":
        return None
    try:
        markup = json_param(value, "reply markup")
    except ApiError:
        raise bad_request("can't parse reply keyboard markup JSON object") from None
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        clean_rows = []
        for row in rows:
            clean_row = []
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
                button = {k: v for k, v in button.items() if v is not None}
                if not isinstance(button.get("text"), str):
                    raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
                if not _BUTTON_ACTIONS & button.keys():
                    raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = button["callback_data"]
                    # The real limit: 1-64 *bytes*; a classic production-only failure.
                    if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                        raise bad_request("BUTTON_DATA_INVALID")
                clean_row.append(button)
            if clean_row:
                clean_rows.append(clean_row)
        return {"inline_keyboard": clean_rows} if clean_rows else None
    if inline_only:
        raise bad_request("inline keyboard expected")
    if any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities as Telegram adds them to users' messages ("/start ABC" -> one of length 6)."""
    result = []
    for m in _COMMAND_RE.finditer(text):
        result.append({"offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group(0)), "type": "bot_command"})
    return result
