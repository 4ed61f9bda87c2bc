"""Folders and single files: Markdown, text, HTML, PDF and FAQ exports (CSV/JSON)."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.base import LoadError, SourceItem, SourceOptions, SourceUnavailable, over_limit
from knowledge.sources.faq import parse_faq_export
from knowledge.sources.html import extract_html
from knowledge.sources.text import decode_text, markdown_title, split_front_matter, title_from_name

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
HTML_SUFFIXES = {".html", ".htm"}
FAQ_SUFFIXES = {".csv", ".json"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | FAQ_SUFFIXES | {".pdf"}
OUTSIDE_THE_FOLDER = "links outside the source folder"
# Where Linux shows the path of an open file; read after opening, so a link swapped in meanwhile is caught.
_OPEN_FILES = Path("/proc/self/fd")


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
    from langchain_community.document_loaders.parsers.pdf import PyPDFParser
    from langchain_core.documents.base import Blob

    try:
        pages = list(PyPDFParser().lazy_parse(Blob.from_data(raw, path=str(path))))
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


def load_file(raw: bytes, path: Path, doc_id: str, updated_at: datetime) -> list[SourceDocument | Skipped]:
    """Parse one file's bytes into documents according to its extension."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return list(_load_text(raw, path, doc_id, updated_at))
    if suffix in HTML_SUFFIXES:
        return list(_load_html(raw, path, doc_id, updated_at))
    if suffix == ".pdf":
        return list(_load_pdf(raw, path, doc_id, updated_at))
    return _load_faq(raw, path, doc_id, updated_at)


def _link_problem(path: Path, root: Path | None) -> str | None:
    """Why a folder entry must not be read (a broken link, a link loop, a real path outside `root`), or None."""
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        if not path.is_symlink():
            return "the file disappeared during the sync"
        return f"broken link: its target {os.readlink(path)} does not exist"
    except RuntimeError:  # Python 3.11 reports a link loop this way
        return "link loop: the link leads back to itself"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "link loop: the link leads back to itself"
        raise
    if root is not None and not real.is_relative_to(root):
        return f"{OUTSIDE_THE_FOLDER} (to {real})"
    return None


def _read_inside(path: Path, root: Path | None, max_bytes: int) -> tuple[bytes, datetime] | str:
    """The bytes and modification time of a regular file whose real path is inside `root`, else why not.

    The file is opened by its real path without following a last link, and where the operating system shows
    what was opened, that is checked again: a link swapped in after the first check is never read through.
    """
    problem = _link_problem(path, root)
    if problem is not None:
        return problem
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path.resolve(strict=True), flags)
    except OSError as error:
        return f"could not open the file ({error.strerror}); will retry at the next sync"
    with os.fdopen(fd, "rb") as handle:
        opened = _OPEN_FILES / str(fd)
        if root is not None and opened.is_symlink() and not Path(os.readlink(opened)).is_relative_to(root):
            return OUTSIDE_THE_FOLDER
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            return "not a regular file"
        if status.st_size == 0:
            return "empty file"
        if status.st_size > max_bytes:
            return f"file is {over_limit(status.st_size, max_bytes)}"
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        return f"file grew while it was read: {over_limit(len(raw), max_bytes, at_least=True)}"
    return raw, datetime.fromtimestamp(status.st_mtime, tz=UTC)


class FileSource:
    """A folder (searched recursively) or a single file of documents.

    In a folder, only files whose real path is inside the folder are read: a link to a file elsewhere, a
    broken link and a link loop are each skipped with the reason. A single file named as a source is read
    wherever its link points, since whoever configured it chose that file.
    """

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
            visible = not any(part.startswith(".") for part in relative.parts)
            # Links are listed whatever they point to: the reader says why one is skipped.
            if visible and (path.is_symlink() or path.is_file()):
                files.append((path, relative.with_suffix("").as_posix()))
        return files

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """Yield one item per supported file; unsupported, empty, oversized and linked-out files are skipped."""
        if not self.path.exists():
            msg = f"{self.path} does not exist; check the path in HELPDESK_SOURCES or on the command line"
            raise SourceUnavailable(msg)
        folder = self.path.is_dir()
        root = self.path.resolve() if folder else None
        for path, doc_id in await asyncio.to_thread(self._files):
            key = path.relative_to(self.path).as_posix() if folder else path.name
            if folder and path.is_symlink() and path.is_dir():
                problem = await asyncio.to_thread(_link_problem, path, root)
                if problem is not None:
                    yield Skipped(key, problem)
                continue  # a link to a folder inside this one: its files are read where they are
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
                yield Skipped(key, f"unsupported file type '{path.suffix or 'none'}' (supported: {kinds})")
                continue
            read = await asyncio.to_thread(_read_inside, path, root, self.options.max_bytes)
            if isinstance(read, str):
                yield Skipped(key, read)
            else:
                raw, updated_at = read
                yield SourceItem(key, content_hash(raw), _loader(raw, path, doc_id, updated_at))


def _loader(raw: bytes, path: Path, doc_id: str, updated_at: datetime):
    async def load() -> list[SourceDocument | Skipped]:
        return await asyncio.to_thread(load_file, raw, path, doc_id, updated_at)

    return load
