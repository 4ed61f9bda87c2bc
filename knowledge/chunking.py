"""Heading-aware chunking: split a document by its Markdown headings, then by size."""

from __future__ import annotations

from langchain_text_splitters import ExperimentalMarkdownSyntaxTextSplitter, RecursiveCharacterTextSplitter

from knowledge.documents import Chunk, SourceDocument

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_HEADING_KEYS = [key for _, key in _HEADERS]


class Chunker:
    """Turns a document into passages that each know their title, heading path and source."""

    def __init__(self, chunk_size: int = 1000, chunk_overlap: int = 150):
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        # Keeps paragraphs, lists and code fences as written, so answers can quote them whole.
        self._headings = ExperimentalMarkdownSyntaxTextSplitter(_HEADERS, strip_headers=True)
        self._sizes = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)

    @property
    def config(self) -> dict:
        """The parameters that decide chunk boundaries; a change means re-chunking everything."""
        return {
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "splitter": "md-headings-v2",
        }

    def _sections(self, document: SourceDocument) -> list[tuple[list[str], str]]:
        if document.text_format != "markdown":
            return [([], document.text)]
        return [
            (
                [section.metadata[key] for key in _HEADING_KEYS if key in section.metadata],
                section.page_content,
            )
            for section in self._headings.split_text(document.text)
        ]

    def split(self, doc_key: str, document: SourceDocument) -> list[Chunk]:
        """The document's passages, plus one title entry so that a question matching a title finds it."""
        updated = document.updated_at.isoformat() if document.updated_at else None
        common = {
            "doc_key": doc_key,
            "doc_id": document.doc_id,
            "title": document.title,
            "source": document.source,
            "updated_at": updated,
        }
        chunks = [Chunk(chunk_id=f"{doc_key}#title", text=document.title, kind="title", **common)]
        for headings, text in self._sections(document):
            for piece in self._sizes.split_text(text):
                if piece.strip():
                    chunk_id = f"{doc_key}#{len(chunks)}"
                    chunks.append(Chunk(chunk_id=chunk_id, text=piece.strip(), headings=headings, **common))
        return chunks
