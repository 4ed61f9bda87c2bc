"""Confluence storage format (XHTML with ac: and ri: macros) as plain HTML: panels and code kept as text."""

from __future__ import annotations

from html.entities import name2codepoint

from lxml import etree

from knowledge.sources.base import LoadError

AC = "http://atlassian.com/content"
RI = "http://atlassian.com/resource/identifier"
# Storage format uses HTML's named entities (&nbsp;, &rsquo;), which XML knows only when declared.
_ENTITIES = "".join(f'<!ENTITY {name} "&#{code};">' for name, code in name2codepoint.items())
_WRAPPER = f'<!DOCTYPE storage [{_ENTITIES}]><storage xmlns:ac="{AC}" xmlns:ri="{RI}">{{}}</storage>'
_PARSER = etree.XMLParser(resolve_entities=True, no_network=True, recover=False, huge_tree=False)
# Macros whose body is code, shown as a code block.
_CODE_MACROS = {"code", "noformat"}
# Macros that hold no text of the page (navigation, embeds of other content).
_EMPTY_MACROS = {"toc", "children", "pagetree", "recently-updated", "contentbylabel", "anchor", "jira"}


def _ac(name: str) -> str:
    return f"{{{AC}}}{name}"


def _parameter(macro: etree._Element, name: str) -> str:
    for parameter in macro.findall(_ac("parameter")):
        if parameter.get(_ac("name")) == name:
            return (parameter.text or "").strip()
    return ""


def _replace(old: etree._Element, new: etree._Element | None) -> None:
    """Put `new` where `old` was (keeping the text that followed it), or remove `old`."""
    parent = old.getparent()
    if parent is None:
        return
    if new is not None:
        new.tail = old.tail
        old.addprevious(new)
    elif old.tail:
        previous = old.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + old.tail
        else:
            parent.text = (parent.text or "") + old.tail
    parent.remove(old)


def _code_block(text: str) -> etree._Element:
    pre = etree.Element("pre")
    # Ending in a newline keeps even a one-line snippet a code block rather than inline code.
    etree.SubElement(pre, "code").text = text if text.endswith("\n") else text + "\n"
    return pre


def _macro(macro: etree._Element) -> etree._Element | None:
    """A macro as HTML: code as a code block, a panel (info, note, warning, expand…) as its labelled text."""
    name = macro.get(_ac("name"), "")
    plain = macro.find(_ac("plain-text-body"))
    rich = macro.find(_ac("rich-text-body"))
    if name in _CODE_MACROS or (plain is not None and rich is None):
        return _code_block(plain.text or "") if plain is not None else None
    if rich is None or name in _EMPTY_MACROS:
        return None
    panel = etree.Element("div")
    label = _parameter(macro, "title") or name.replace("-", " ").capitalize()
    heading = etree.SubElement(etree.SubElement(panel, "p"), "strong")
    heading.text = f"{label}:"
    heading.getparent().tail = rich.text
    panel.extend(list(rich))
    return panel


def _link_text(link: etree._Element) -> str:
    """What a link shows: its own text, else the title of the page or the name of the file it points to."""
    shown = "".join(link.itertext()).strip()
    if shown:
        return shown
    for target in link:
        for attribute in ("content-title", "filename", "value"):
            value = target.get(f"{{{RI}}}{attribute}")
            if value:
                return value
    return ""


def _task(task: etree._Element) -> etree._Element:
    item = etree.Element("li")
    done = (task.findtext(_ac("task-status")) or "").strip() == "complete"
    body = task.find(_ac("task-body"))
    item.text = ("(done) " if done else "(to do) ") + ("" if body is None else (body.text or ""))
    if body is not None:
        item.extend(list(body))
    return item


def storage_to_html(storage: str) -> str:
    """Plain HTML of a storage-format body, ready for Markdown conversion; LoadError if it is not XHTML."""
    try:
        root = etree.fromstring(_WRAPPER.format(storage).encode(), _PARSER)
    except etree.XMLSyntaxError as error:
        msg = f"the page body is not valid storage format ({error.msg}); open and re-save the page"
        raise LoadError(msg) from None
    # Innermost first, so a panel's body is converted before the panel itself moves it.
    for macro in reversed(list(root.iter(_ac("structured-macro")))):
        _replace(macro, _macro(macro))
    for link in list(root.iter(_ac("link"))):
        span = etree.Element("span")
        span.text = _link_text(link)
        _replace(link, span)
    for task_list in list(root.iter(_ac("task-list"))):
        bullets = etree.Element("ul")
        bullets.extend(_task(task) for task in task_list.iter(_ac("task")))
        _replace(task_list, bullets)
    for element in list(root.iter()):
        if not isinstance(element.tag, str) or element is root:
            continue
        if element.tag.startswith(f"{{{RI}}}") or element.tag in (_ac("image"), _ac("emoticon")):
            _replace(element, None)
        elif element.tag.startswith(f"{{{AC}}}"):  # layouts and other wrappers: keep what they hold
            element.tag = "div"
    etree.cleanup_namespaces(root)
    root.tag = "div"
    return etree.tostring(root, encoding="unicode", method="html")
