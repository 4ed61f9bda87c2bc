"""The records that flow from sources through chunking into the index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime


def content_hash(*parts: str | bytes) -> str:
    """Return a stable SHA-256 hex digest of the given parts."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


# Titles and headings longer than this are cut (with "…"): a one-line "# …" of megabytes would otherwise
# become a title repeated in every passage. 200 characters holds the longest real help-center titles
# (the sample knowledge base's longest is 64) with room to spare.
MAX_TITLE_CHARS = 200


def clip_title(text: str) -> str:
    """A title or heading on one line, cut to MAX_TITLE_CHARS characters (ending in "…" when cut)."""
    words = " ".join(text[: MAX_TITLE_CHARS * 4].split())
    if len(words) <= MAX_TITLE_CHARS and len(text) <= MAX_TITLE_CHARS * 4:
        return words
    return words[: MAX_TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class SourceDocument:
    """One document of the knowledge base, as a source yields it."""

    doc_id: str
    title: str
    text: str
    source: str
    updated_at: datetime | None = None
    text_format: str = "markdown"
    # Where the document sits on its platform (category › section, ancestor pages), above its own headings.
    headings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", clip_title(self.title))

    @property
    def fingerprint(self) -> str:
        """Hash of everything that ends up in the index for this document."""
        stamp = self.updated_at.isoformat() if self.updated_at else ""
        place = ["\x1f".join(self.headings)] if self.headings else []
        return content_hash(self.doc_id, self.title, self.text, self.source, stamp, self.text_format, *place)


@dataclass(frozen=True)
class Skipped:
    """An input that could not be indexed, with the reason; its last good version stays unless gone."""

    where: str
    reason: str
    keep_previous: bool = True


DOCUMENT_KIND = "document"


@dataclass
class Chunk:
    """A retrievable piece of a document, with the context that locates it.

    `kind` is "passage" (text to answer from), "title" (the title alone) or "document" (the whole
    document as one vector, which ranks documents but is never shown).
    """

    chunk_id: str
    doc_key: str
    doc_id: str
    title: str
    text: str
    source: str
    headings: list[str] = field(default_factory=list)
    updated_at: str | None = None
    kind: str = "passage"

    @property
    def derived(self) -> bool:
        """A whole-document entry whose vector is the mean of the passages' (nothing of it is embedded)."""
        return self.kind == DOCUMENT_KIND and not self.text

    def embedding_text(self) -> str:
        """Text given to the embedding model: where the passage sits, then the passage."""
        if self.kind == "title":
            return self.title
        if self.kind == DOCUMENT_KIND:
            return f"{self.title}\n\n{self.text}"
        path = [self.title, *[h for h in self.headings if h != self.title]]
        return " > ".join(path) + "\n\n" + self.text

    def keyword_text(self) -> str:
        """Text given to BM25: title and headings count as words of the passage; a document entry has none."""
        if self.kind == DOCUMENT_KIND:
            return ""
        return " ".join([self.title, *self.headings, self.text])

    def to_metadata(self) -> dict:
        """Everything but the text, for the vector store's docstore."""
        return {
            "chunk_id": self.chunk_id,
            "doc_key": self.doc_key,
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "headings": list(self.headings),
            "updated_at": self.updated_at,
            "kind": self.kind,
        }

    @classmethod
    def from_metadata(cls, text: str, metadata: dict) -> Chunk:
        """Rebuild a chunk from docstore text and metadata."""
        return cls(text=text, **{k: metadata[k] for k in cls.__dataclass_fields__ if k != "text"})

    def document_entry(self, text: str = "") -> Chunk:
        """The whole-document entry of this chunk's document; without text its vector is the passages' mean."""
        return replace(self, chunk_id=f"{self.doc_key}#document", text=text, headings=[], kind=DOCUMENT_KIND)
