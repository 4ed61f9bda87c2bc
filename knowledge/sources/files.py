"""Folders and single files: Markdown, text, HTML, PDF and FAQ exports (CSV/JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.base import LoadError, SourceItem, SourceOptions, SourceUnavailable
from knowledge.sources.faq import parse_faq_export
from knowledge.sources.html import extract_html
from knowledge.sources.text import decode_text, markdown_title, split_front_matter, title_from_name

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
HTML_SUFFIXES = {".html", ".htm"}
FAQ_SUFFIXES = {".csv", ".json"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | FAQ_SUFFIXES | {".pdf"}


def _load_text(raw: bytes, path: Path, doc_id: str, updated_at: datetime) -> list[SourceDocument]:
    meta, body = split_front_matter(decode_text(raw))
    is_markdown = path.suffix.lower() != ".txt"
    title = str(
        meta.get("title") or (markdown_title(body) if is_markdown else None) or title_from_name(path.stem)
    )
    source = str(meta.get("url") or path.resolve())
    fmt = "markdown" if is_markdown else "text"
    return [SourceDocument(doc_id, title, body, source, updated_at, text_format=fmt)]


def _load_html(raw: bytes, path: Path, doc_id: str, updated_at: datetime) -> list[SourceDocument]:
    title, text = extract_html(raw)
    return [
        SourceDocument(doc_id, title or title_from_name(path.stem), text, str(path.resolve()), updated_at)
    ]


def _load_pdf(raw: bytes, path: Path, doc_id: str, updated_at: datetime) -> list[SourceDocument]:
    from langchain_community.document_loaders import PyPDFLoader

    try:
        pages = PyPDFLoader(str(path)).load()
    except Exception as error:
        msg = f"could not read the PDF ({type(error).__name__}: {error}); re-export it or replace it"
        raise LoadError(msg) from None
    text = "\n\n".join(page.page_content.strip() for page in pages if page.page_content.strip())
    if not text:
        msg = "the PDF has no extractable text (scanned images need OCR first)"
        raise LoadError(msg)
    pdf_title = str(pages[0].metadata.get("title") or "").strip() if pages else ""
    title = pdf_title or title_from_name(path.stem)
    return [SourceDocument(doc_id, title, text, str(path.resolve()), updated_at, text_format="text")]


def _load_faq(raw: bytes, path: Path, doc_id: str, updated_at: datetime) -> list[SourceDocument | Skipped]:
    return parse_faq_export(
        decode_text(raw),
        doc_id=doc_id,
        fallback_source=str(path.resolve()),
        is_json=path.suffix.lower() == ".json",
        updated_at=updated_at,
    )


def load_file(raw: bytes, path: Path, doc_id: str) -> list[SourceDocument | Skipped]:
    """Parse one file's bytes into documents according to its extension."""
    updated_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return list(_load_text(raw, path, doc_id, updated_at))
    if suffix in HTML_SUFFIXES:
        return list(_load_html(raw, path, doc_id, updated_at))
    if suffix == ".pdf":
        return list(_load_pdf(raw, path, doc_id, updated_at))
    return _load_faq(raw, path, doc_id, updated_at)


class FileSource:
    """A folder (searched recursively) or a single file of documents."""

    def __init__(self, path: Path, options: SourceOptions):
        self.path = path
        self.options = options
        self.name = str(path.resolve())

    def _files(self) -> list[tuple[Path, str]]:
        if self.path.is_file():
            return [(self.path, self.path.stem)]
        files = []
        for path in sorted(self.path.rglob("*")):
            relative = path.relative_to(self.path)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                files.append((path, relative.with_suffix("").as_posix()))
        return files

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """Yield one item per supported file; unsupported, empty or oversized files are skipped."""
        if not self.path.exists():
            msg = f"{self.path} does not exist; check the path in HELPDESK_SOURCES or on the command line"
            raise SourceUnavailable(msg)
        for path, doc_id in await asyncio.to_thread(self._files):
            key = path.relative_to(self.path).as_posix() if self.path.is_dir() else path.name
            size = path.stat().st_size
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
                yield Skipped(key, f"unsupported file type '{path.suffix or 'none'}' (supported: {kinds})")
            elif size == 0:
                yield Skipped(key, "empty file")
            elif size > self.options.max_bytes:
                limit = self.options.max_bytes / 1024 / 1024
                reason = (
                    f"file is {size / 1024 / 1024:.1f} MB, over the {limit:g} MB limit (HELPDESK_MAX_FILE_MB)"
                )
                yield Skipped(key, reason)
            else:
                raw = await asyncio.to_thread(path.read_bytes)
                yield SourceItem(key, content_hash(raw), _loader(raw, path, doc_id))


def _loader(raw: bytes, path: Path, doc_id: str):
    async def load() -> list[SourceDocument | Skipped]:
        return await asyncio.to_thread(load_file, raw, path, doc_id)

    return load
