"""Heading-aware chunking: split a document by its Markdown headings, then by size."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from langchain_text_splitters import ExperimentalMarkdownSyntaxTextSplitter, RecursiveCharacterTextSplitter

from knowledge.documents import Chunk, SourceDocument, clip_title
from knowledge.tables import segments

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_HEADING_KEYS = [key for _, key in _HEADERS]
_FENCE_LINE = re.compile(r"(?m)^[ \t]*```")
# How a passage that a code block was cut at starts or ends, so that each passage is whole Markdown.
CODE_REOPENED = "```\n"
CODE_CLOSED = "\n```"
# A section this short ("but:", "versus") introduces its neighbour; alone its vector would match the title.
MIN_SECTION_WORDS = 6


class Chunker:
    """Turns a document into passages that each know their title, heading path and source.

    Without a tokenizer, sizes count characters of the passage. With one (the embedding model's),
    sizes count that model's tokens of the text it embeds, title and heading path included, so a
    passage of at most `chunk_size` tokens is embedded whole rather than truncated. A document that
    fits in `document_tokens` also gets one entry holding all of it (see `with_document_vectors`).
    """

    def __init__(
        self,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        tokenizer: PreTrainedTokenizerBase | None = None,
        document_tokens: int = 0,
    ):
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.tokenizer = tokenizer
        self.document_tokens = document_tokens if tokenizer is not None else 0
        # Keeps paragraphs, lists and code fences as written, so answers can quote them whole.
        self._headings = ExperimentalMarkdownSyntaxTextSplitter(_HEADERS, strip_headers=True)
        self._splitter = cache(self._make_splitter)

    @property
    def config(self) -> dict:
        """The parameters that decide chunk boundaries; a change means re-chunking everything."""
        if self.tokenizer is None:
            return {
                "chunk_size": self.chunk_size,
                "chunk_overlap": self.chunk_overlap,
                "splitter": "md-headings-v7",
            }
        # Token counts follow the embedding model, whose name the manifest records beside this.
        return {
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "document_tokens": self.document_tokens,
            "splitter": "md-headings-tokens-v6",
        }

    def _count(self, text: str) -> int:
        assert self.tokenizer is not None
        return len(self.tokenizer.tokenize(text))

    def _make_splitter(self, size: int) -> RecursiveCharacterTextSplitter:
        overlap = min(self.chunk_overlap, size // 4)
        if self.tokenizer is None:
            return RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap)
        return RecursiveCharacterTextSplitter(
            chunk_size=size, chunk_overlap=overlap, length_function=self._count
        )

    def _budget(self, context: Chunk) -> int:
        """Room left for passage text once the embedded title and heading path are counted."""
        if self.tokenizer is None:
            return self.chunk_size
        used = self._count(context.embedding_text())
        # A heading path longer than half the budget still leaves passages of useful length.
        return max(self.chunk_size - used, self.chunk_size // 2)

    def _sections(self, document: SourceDocument) -> list[tuple[list[str], str]]:
        place = [clip_title(heading) for heading in document.headings]
        if document.text_format != "markdown":
            return [(place, document.text)]
        sections = [
            (
                [
                    *place,
                    *(clip_title(section.metadata[key]) for key in _HEADING_KEYS if key in section.metadata),
                ],
                section.page_content,
            )
            for section in self._headings.split_text(document.text)
        ]
        return _join_short_sections(sections)

    def split(self, doc_key: str, document: SourceDocument) -> list[Chunk]:
        """The document's passages, a title entry so that a question matching a title finds it, and a
        whole-document entry when the document fits the embedding model."""
        updated = document.updated_at.isoformat() if document.updated_at else None
        common = {
            "doc_key": doc_key,
            "doc_id": document.doc_id,
            "title": document.title,
            "source": document.source,
            "updated_at": updated,
        }
        chunks = [Chunk(chunk_id=f"{doc_key}#title", text=document.title, kind="title", **common)]
        bodies = []
        for headings, text in self._sections(document):
            splitter = self._splitter(self._budget(Chunk(chunk_id="", text="", headings=headings, **common)))
            pieces = segments(text)
            bodies.append("\n".join(segment for segment, _ in pieces).strip())
            # A table row is a passage of its own, read as a sentence: it embeds, matches and quotes far
            # better than pipes, or than a dozen rows averaged into one vector.
            for segment, is_row in pieces:
                for piece in [segment] if is_row else fenced_pieces(segment, splitter.split_text(segment)):
                    if piece.strip():
                        chunk_id = f"{doc_key}#{len(chunks)}"
                        chunks.append(
                            Chunk(chunk_id=chunk_id, text=piece.strip(), headings=headings, **common)
                        )
        # The body without heading lines, which the title entry and passages already carry.
        body = "\n\n".join(section for section in bodies if section)
        whole = chunks[0].document_entry(body)
        if (
            self.document_tokens
            and whole.text
            and self._count(whole.embedding_text()) <= self.document_tokens
        ):
            chunks.append(whole)
        return chunks


def fenced_pieces(segment: str, pieces: list[str]) -> list[str]:
    """The pieces a segment was split into, a code block cut between two of them fenced again on each side.

    A passage that starts or ends inside a code block would otherwise be read, quoted and shown as prose
    (or leave the rest of an answer inside an open block).
    """
    fenced, position = [], 0
    for piece in pieces:
        start = segment.find(piece, position)
        if start < 0:
            fenced.append(piece)
            continue
        position = start + 1  # pieces overlap: the next one starts after this one's start
        opens_inside = len(_FENCE_LINE.findall(segment, 0, start)) % 2 == 1
        ends_inside = (opens_inside + len(_FENCE_LINE.findall(piece))) % 2 == 1
        fenced.append(f"{CODE_REOPENED if opens_inside else ''}{piece}{CODE_CLOSED if ends_inside else ''}")
    return fenced


def _join_short_sections(sections: list[tuple[list[str], str]]) -> list[tuple[list[str], str]]:
    """Join a section of a few words to the next one under the same headings (or else to the previous one)."""
    joined: list[tuple[list[str], str]] = []
    pending: tuple[list[str], str] | None = None
    for headings, text in sections:
        if pending is not None and pending[0] == headings:
            text = f"{pending[1].rstrip()}\n\n{text.lstrip()}"
        elif pending is not None:
            joined.append(pending)
        pending = None
        if len(text.split()) < MIN_SECTION_WORDS:
            pending = (headings, text)
        else:
            joined.append((headings, text))
    if pending is not None:
        if joined and joined[-1][0] == pending[0]:
            headings, text = joined.pop()
            joined.append((headings, f"{text.rstrip()}\n\n{pending[1].lstrip()}"))
        else:
            joined.append(pending)
    return joined
