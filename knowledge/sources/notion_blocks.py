"""Notion blocks as Markdown: headings, lists, to-dos, code, tables, callouts and toggles."""

from __future__ import annotations

_HEADINGS = {"heading_1": "#", "heading_2": "##", "heading_3": "###"}
# Blocks that only arrange their children: the children are the content.
CONTAINERS = {"column_list", "column", "synced_block", "template"}
# Other pages and databases, indexed on their own (or not at all) rather than inside this page.
_ELSEWHERE = {"child_page", "child_database", "link_to_page", "table_of_contents", "breadcrumb", "divider"}
# Files and embeds: only their caption and address say anything.
_MEDIA = {"image", "video", "audio", "file", "pdf", "bookmark", "embed", "link_preview"}
_LIST_ITEMS = {"bulleted_list_item", "numbered_list_item", "to_do"}


def rich_text(parts: list[dict]) -> str:
    """Notion rich text as Markdown: bold, italic and inline code kept, links as their text."""
    out = []
    for part in parts or []:
        text = part.get("plain_text") or ""
        marks = part.get("annotations") or {}
        if text.strip() and marks.get("code"):
            text = f"`{text}`"
        elif text.strip() and marks.get("bold"):
            text = f"**{text}**"
        elif text.strip() and marks.get("italic"):
            text = f"*{text}*"
        out.append(text)
    return "".join(out)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _table(block: dict) -> str:
    rows = [
        [
            rich_text(cell).replace("|", "\\|").replace("\n", " ")
            for cell in row.get("table_row", {}).get("cells", [])
        ]
        for row in block.get("children", [])
        if row.get("type") == "table_row"
    ]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _media(value: dict) -> str:
    caption = rich_text(value.get("caption", []))
    address = value.get("url") or value.get(value.get("type", ""), {}).get("url", "")
    return caption or (address if value.get("url") else "")


def _block(block: dict, number: int) -> str:
    kind = block.get("type", "")
    value = block.get(kind) or {}
    text = rich_text(value.get("rich_text", []))
    children = blocks_to_markdown(block.get("children", []))
    if kind in _HEADINGS:
        return f"{_HEADINGS[kind]} {text}" + (f"\n\n{children}" if children else "")
    if kind in _LIST_ITEMS:
        marker = {"bulleted_list_item": "-", "numbered_list_item": f"{number}."}.get(kind)
        if kind == "to_do":
            marker = "- [x]" if value.get("checked") else "- [ ]"
        return f"{marker} {text}" + (f"\n{_indent(children)}" if children else "")
    if kind == "code":
        return f"```{value.get('language', '')}\n{rich_text(value.get('rich_text', []))}\n```"
    if kind in ("quote", "callout"):
        icon = (value.get("icon") or {}).get("emoji", "") if kind == "callout" else ""
        body = "\n\n".join(part for part in (f"{icon} {text}".strip(), children) if part)
        return _indent(body, "> ").replace("\n\n", "\n>\n")
    if kind == "toggle":
        return "\n\n".join(part for part in (f"**{text}**" if text.strip() else "", children) if part)
    if kind == "table":
        return _table(block)
    if kind == "equation":
        return f"$$ {value.get('expression', '')} $$"
    if kind in _MEDIA:
        return _media(value)
    if kind in CONTAINERS or kind == "paragraph":
        return "\n\n".join(part for part in (text, children) if part)
    return ""  # _ELSEWHERE and block types Notion does not support in its API


def blocks_to_markdown(blocks: list[dict]) -> str:
    """A list of blocks (each with its fetched `children`) as Markdown, numbered lists counted."""
    out, number, previous = "", 0, ""
    for block in blocks:
        kind = block.get("type", "")
        if kind in _ELSEWHERE:
            continue
        number = number + 1 if kind == "numbered_list_item" else 0
        rendered = _block(block, number).strip("\n")
        if rendered.strip():
            joint = "\n" if kind in _LIST_ITEMS and previous in _LIST_ITEMS else "\n\n"
            out += (joint if out else "") + rendered
            previous = kind
    return out
