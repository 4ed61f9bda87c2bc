"""Decoding and titling of text content: UTF-8 checks, front matter, Markdown titles."""

from __future__ import annotations

import re

import yaml

from knowledge.documents import clip_title
from knowledge.sources.base import LoadError

# Linear on any input: the closing "#"s and spaces are stripped afterwards, not by backtracking.
_HEADING = re.compile(r"^#[ \t]+(\S.*)$", re.MULTILINE)


def decode_text(raw: bytes) -> str:
    """Decode UTF-8 text, refusing binary data and other encodings with a clear reason."""
    if b"\x00" in raw[:8192]:
        msg = "binary data in a text file (NUL bytes); remove it or give it the right extension"
        raise LoadError(msg)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        msg = f"not UTF-8 text (bad byte at offset {error.start}); re-save the file as UTF-8"
        raise LoadError(msg) from None
    if not text.strip():
        msg = "the file has no text"
        raise LoadError(msg)
    return text


def split_front_matter(text: str) -> tuple[dict, str]:
    """Separate a leading YAML front-matter block (--- ... ---) from the body."""
    if not text.startswith("---"):
        return {}, text
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        return {}, text
    try:
        meta = yaml.safe_load(parts[0][3:]) or {}
    except yaml.YAMLError:
        return {}, text
    if not isinstance(meta, dict):
        return {}, text
    return meta, parts[1].lstrip("-").lstrip("\n")


def markdown_title(text: str) -> str | None:
    """The first level-one heading of a Markdown text, if any."""
    match = _HEADING.search(text)
    return clip_title(match.group(1).rstrip().rstrip("#").rstrip()) if match else None


def title_from_name(name: str) -> str:
    """A readable title made from a file name: 'reset-password' → 'Reset password'."""
    words = re.sub(r"[-_.]+", " ", name).strip()
    return words[:1].upper() + words[1:] if words else name
