"""One version of the index: a FAISS vector store plus a BM25 keyword index over the same chunks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import bm25s
import faiss
import numpy as np
import Stemmer
from langchain_community.docstore.in_memory import InMemoryDocstore
from langchain_community.vectorstores import FAISS
from langchain_community.vectorstores.utils import DistanceStrategy
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from knowledge.documents import DOCUMENT_KIND, Chunk
from knowledge.integrity import MANIFEST_KEY, damaged, verify, write_checksums

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")
# Normalised BM25 (0..1) times this is added to a document's cosine similarity in hybrid mode.
KEYWORD_WEIGHT = 0.05
# A passage with fewer words of prose than this (a code block, "for example:") stands for its document only
# when it matches clearly better than one that explains something.
MIN_PROSE_WORDS = 8
THIN_PASSAGE_PENALTY = 0.05
# A query this close to a document's title asks what the whole document is about: its opening answers.
TITLE_QUESTION_SIMILARITY = 0.9
# A document's similarity blends its best entry's cosine with its whole-document entry's (this share), so a
# document about the question outranks a neighbour that mentions it in one passage.
DOCUMENT_SHARE = 0.5
# Passages of a document handed on besides its best one, for answers that need two rows or sections: at
# most this many, matching the query (cosine plus normalised BM25) within this margin of the best.
MORE_PASSAGES = 2
MORE_PASSAGE_MARGIN = 0.1
# A document of at most this many words is handed on whole, its passages in reading order: a short article
# cut into passages loses the sentence that introduces its code block or list. On the three dev sets'
# reworded questions whose best document was right, the best passage and its runners-up held every key fact
# for 57 of 72 (Python FAQ), 49 of 56 (LibreOffice Help) and 36 of 40 (sample) questions; with documents of
# at most 150 / 250 / 300 words read whole, 60 / 61 / 65, 51 / 54 / 54 and 36 / 36 / 36 (the sample's
# articles are longer). Windows of 150–300 words around every document's best passage held more key facts
# still, but the answer model chose worse among that many excerpts (sample: 3 of the first 19 answers lost).
WHOLE_DOCUMENT_WORDS = 300
# A document of at most this many words that names another document's title ("See How do I …?") points
# the reader there: wherever it ranks, the documents it names follow it. Titles of fewer words than
# POINTER_TITLE_WORDS ("Billing") are too common to count as a reference.
POINTER_WORDS = 30
POINTER_TITLE_WORDS = 3
# A passage whose last sentence announces what comes next ("Here's how to …", "as follows", a closing colon)
# does not answer by itself: the passage after it in the document goes with it.
LEAD_IN = re.compile(
    r"(?:^|[.!?]\s+)(?:here(?:'s|’s| is| are)\b|follow these\b)[^.!?]*[.!:]?\s*$"
    r"|\b(?:as follows|the following|below)\W*$|:\s*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")
# An identifier that joins words with underscores (an error code such as card_declined): users quote the code,
# articles often describe it in words ("Card declined").
_JOINED_WORDS = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")
_CODE = re.compile(r"```.*?(```|$)|`[^`]*`", re.DOTALL)
_STEMMER = Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stemmed words without English stop words, as BM25 sees them."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False)


def with_identifier_words(query: str) -> str:
    """The query, followed by the words its underscore-joined identifiers stand for, so both are searched."""
    words = [match.group(0).replace("_", " ") for match in _JOINED_WORDS.finditer(query)]
    return f"{query} ({'; '.join(words)})" if words else query


def title_words(text: str) -> tuple[str, ...]:
    """Lower-cased words without punctuation, for matching a title inside a text."""
    return tuple(_WORD.findall(text.lower()))


def announces_what_follows(text: str) -> bool:
    """True when `text` ends by announcing what comes next, like "Here's how to get back in." or "as follows:"."""
    return LEAD_IN.search(text.strip().rstrip("*_")) is not None


def prose_words(text: str) -> int:
    """Words of a passage outside code blocks and code spans."""
    return len(_CODE.sub(" ", text).split())


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and the signals behind it (cosines and normalised BM25)."""

    chunk: Chunk
    score: float
    dense: float
    keyword: float
    document: float | None = None
    # The document's next best passages for the query, best first (a table's other rows, another section).
    more: tuple[Chunk, ...] = ()
    # The passage after the best one, when the best one ends by announcing it ("Here's how to reset it.").
    announced: Chunk | None = None
    # The see-also entry that names this document and brought it up to follow it (its doc_key).
    named_by: str | None = None
    # All the document's passages in reading order, when it has at most WHOLE_DOCUMENT_WORDS words.
    whole: tuple[Chunk, ...] = ()


def with_document_vectors(
    chunks: list[Chunk], vectors: list[list[float]]
) -> tuple[list[Chunk], list[list[float]]]:
    """Chunks and vectors where every document has a whole-document entry.

    A document too long for the model to embed whole gets the normalised mean of its passage vectors.
    """
    whole = {c.doc_key for c in chunks if c.kind == DOCUMENT_KIND}
    passages: dict[str, list[int]] = {}
    for position, chunk in enumerate(chunks):
        if chunk.kind == "passage" and chunk.doc_key not in whole:
            passages.setdefault(chunk.doc_key, []).append(position)
    out_chunks, out_vectors = list(chunks), list(vectors)
    for positions in passages.values():
        mean = np.mean([np.asarray(vectors[p], dtype=np.float32) for p in positions], axis=0)
        norm = float(np.linalg.norm(mean))
        if norm == 0:
            continue
        out_chunks.append(chunks[positions[0]].document_entry())
        out_vectors.append((mean / norm).tolist())
    return out_chunks, out_vectors


@dataclass(frozen=True)
class Retrieval:
    """Ranked hits and how sure retrieval is that the knowledge base answers the query (0..1)."""

    hits: list[Hit]
    confidence: float
    coverage: float


# How much the query's keyword coverage in the top documents adds to the top cosine similarity.
COVERAGE_SHARE = 0.25
COVERAGE_DOCS = 3
# How much the best document's lead over the runners-up (its score minus their mean, among the top
# LEAD_DOCS) adds: a question the knowledge base answers singles out a document, an unanswered one does not.
LEAD_SHARE = 0.75
LEAD_DOCS = 10


# Rows each search asks storage for, by vector and by keywords (at least ten per document returned).
FETCH_K = 100


def _rated_k(k: int) -> int:
    """How many documents are ranked to rate a retrieval of k: enough for its coverage and lead."""
    return max(k, COVERAGE_DOCS, LEAD_DOCS)


def lead(hits: list[Hit]) -> float:
    """How far the best document's score stands above the mean of the runners-up in the top LEAD_DOCS."""
    runners_up = [hit.score for hit in hits[1:LEAD_DOCS]]
    return hits[0].score - sum(runners_up) / len(runners_up) if runners_up else 0.0


@dataclass(frozen=True)
class QueryScores:
    """What a version's storage says about one query; ranking reads it and nothing else.

    `candidates` maps the rows nearest the query vector, and the rows matching its keywords, to their
    cosines; `keyword` is every row's BM25 score divided by the best one (None in dense mode); `cosines`
    gives the cosine of any other row ranking asks about, `coverage` the IDF-weighted share of the query's
    words found in a few documents (0..1).
    """

    candidates: dict[int, float]
    keyword: np.ndarray | None
    cosines: Callable[[list[int]], list[float]]
    coverage: Callable[[list[str]], float]


class RankedIndex:
    """Ranking over one version's chunks: documents as their best passages, fused scores, pointers.

    A subclass stores the chunks and their vectors and answers `query_scores` (or `aquery_scores`, when its
    storage is reached asynchronously); the ranking is the same whatever the storage.
    """

    manifest: dict

    def _arrange(self, chunks: list[Chunk]) -> None:
        """Positional views used by search: chunk per row, rows per document, document-entry rows."""
        self.chunks: list[Chunk] = chunks
        self.rows_by_doc: dict[str, list[int]] = {}
        self.document_rows: dict[str, int] = {}
        for position, chunk in enumerate(chunks):
            if chunk.kind == DOCUMENT_KIND:
                self.document_rows[chunk.doc_key] = position
            else:
                self.rows_by_doc.setdefault(chunk.doc_key, []).append(position)
        self._pointers: dict[str, list[str]] | None = None

    @property
    def pointers(self) -> dict[str, list[str]]:
        """Short documents that send the reader to other documents by title, and the documents they name."""
        if self._pointers is None:
            self._pointers = self._find_pointers()
        return self._pointers

    def _find_pointers(self) -> dict[str, list[str]]:
        """Every short document's mentions of other documents' titles (word n-grams looked up by title)."""
        titles: dict[tuple[str, ...], str] = {}
        for doc_key, rows in self.rows_by_doc.items():
            words = title_words(self.chunks[rows[0]].title)
            if len(words) >= POINTER_TITLE_WORDS:
                titles.setdefault(words, doc_key)
        longest = max(map(len, titles), default=0)
        pointers: dict[str, list[str]] = {}
        for doc_key, rows in self.rows_by_doc.items():
            text = self._short_text(rows, 2 * POINTER_WORDS)
            words = title_words(text) if text is not None else ()
            if not words or len(words) > POINTER_WORDS:
                continue
            named = {
                titles[words[start : start + size]]: start
                for size in range(POINTER_TITLE_WORDS, min(longest, len(words)) + 1)
                for start in range(len(words) - size + 1)
                if words[start : start + size] in titles
            }
            named.pop(doc_key, None)
            if named:
                pointers[doc_key] = sorted(named, key=named.__getitem__)
        return pointers

    def _short_text(self, rows: list[int], max_words: int) -> str | None:
        """The passages of a document as one text, or None once they pass `max_words` (split by spaces)."""
        passages, count = [], 0
        for row in rows:
            if self.chunks[row].kind == "passage":
                passages.append(self.chunks[row].text)
                count += len(passages[-1].split())
                if count > max_words:
                    return None
        return " ".join(passages)

    def __len__(self) -> int:
        return len(self.chunks)

    def retrieve(
        self,
        query_vector: list[float],
        query_text: str,
        *,
        k: int = 5,
        mode: str = "hybrid",
        keyword_weight: float = KEYWORD_WEIGHT,
    ) -> Retrieval:
        """Search, then rate the result: top cosine, keyword coverage of the top documents and the lead."""
        fetch = self._fetch(_rated_k(k), mode)
        scores = (
            self.query_scores(np.asarray(query_vector, np.float32), query_text, fetch, mode)
            if fetch
            else None
        )
        return self.rate(scores, k=k, mode=mode, keyword_weight=keyword_weight)

    def search(
        self,
        query_vector: list[float],
        query_text: str,
        *,
        k: int = 5,
        mode: str = "hybrid",
        keyword_weight: float = KEYWORD_WEIGHT,
        fetch_k: int = FETCH_K,
    ) -> list[Hit]:
        """The k best documents, each as its best passage; scores fuse cosine and normalised BM25."""
        fetch = self._fetch(k, mode, fetch_k)
        scores = (
            self.query_scores(np.asarray(query_vector, np.float32), query_text, fetch, mode)
            if fetch
            else None
        )
        return self.rank(scores, k=k, mode=mode, keyword_weight=keyword_weight)

    async def aquery(
        self, query_vector: list[float], query_text: str, *, k: int, mode: str, rated: bool = False
    ) -> QueryScores | None:
        """The storage's scores for a query, reached asynchronously, for `rank` (k hits) or `rate` (`rated`)."""
        fetch = self._fetch(_rated_k(k) if rated else k, mode)
        if not fetch:
            return None
        return await self.aquery_scores(np.asarray(query_vector, np.float32), query_text, fetch, mode)

    def rate(
        self, scores: QueryScores | None, *, k: int, mode: str, keyword_weight: float = KEYWORD_WEIGHT
    ) -> Retrieval:
        """The k best hits for the scores of a query, with how sure retrieval is that they answer it."""
        hits = self.rank(scores, k=_rated_k(k), mode=mode, keyword_weight=keyword_weight)
        if not hits or scores is None:
            return Retrieval([], 0.0, 0.0)
        coverage = scores.coverage([h.chunk.doc_key for h in hits[:COVERAGE_DOCS]])
        if mode == "bm25":
            confidence = coverage
        else:
            best = max(0.0, max(hit.dense for hit in hits))
            confidence = (1 - COVERAGE_SHARE) * best + COVERAGE_SHARE * coverage + LEAD_SHARE * lead(hits)
        return Retrieval(hits[:k], round(min(1.0, max(0.0, confidence)), 4), round(coverage, 4))

    def _fetch(self, k: int, mode: str, fetch_k: int = FETCH_K) -> int:
        """Rows to ask storage for when ranking k documents; 0 when there is nothing to search."""
        if mode not in RETRIEVAL_MODES:
            msg = f"Unknown retrieval mode {mode!r}: use one of {', '.join(RETRIEVAL_MODES)}"
            raise ValueError(msg)
        return min(len(self.chunks), max(fetch_k, k * 10))

    def query_scores(self, vector: np.ndarray, query_text: str, fetch: int, mode: str) -> QueryScores:
        """The storage's scores for a query: the `fetch` nearest rows, the `fetch` best by keywords, and more."""
        raise NotImplementedError

    async def aquery_scores(self, vector: np.ndarray, query_text: str, fetch: int, mode: str) -> QueryScores:
        """`query_scores` for storage reached asynchronously; by default the synchronous one."""
        return self.query_scores(vector, query_text, fetch, mode)

    def rank(
        self, scores: QueryScores | None, *, k: int, mode: str, keyword_weight: float = KEYWORD_WEIGHT
    ) -> list[Hit]:
        """The k best documents for the scores of a query, each as its best passage."""
        if scores is None:
            return []
        candidates, keyword = scores.candidates, scores.keyword
        whole = self._document_similarities(candidates, scores.cosines) if mode != "bm25" else {}
        ranked = self._rank_documents(candidates, whole, keyword, mode, keyword_weight)
        return self._follow_pointers(ranked, scores.cosines, keyword, mode, keyword_weight)[:k]

    def _document_similarities(self, candidates: dict[int, float], cosines) -> dict[str, float]:
        """Cosine of the query with the whole-document entry of every candidate's document."""
        rows = {self.chunks[r].doc_key: self.document_rows.get(self.chunks[r].doc_key) for r in candidates}
        known = {key: candidates[row] for key, row in rows.items() if row is not None and row in candidates}
        missing = [(key, row) for key, row in rows.items() if row is not None and key not in known]
        similarities = cosines([row for _, row in missing])
        known.update(zip([key for key, _ in missing], similarities, strict=True))
        return known

    def _rank_documents(self, candidates, whole, keyword, mode, weight) -> list[Hit]:
        by_doc: dict[str, list[int]] = {}
        for row in sorted(candidates):  # equal scores rank in index order, whatever the storage's order
            if self.chunks[row].kind != DOCUMENT_KIND:
                by_doc.setdefault(self.chunks[row].doc_key, []).append(row)
        hits = [
            self._document_hit(doc_key, rows, candidates, whole.get(doc_key), keyword, mode, weight)
            for doc_key, rows in by_doc.items()
        ]
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits

    def _document_hit(self, doc_key, rows, candidates, document, keyword, mode, weight) -> Hit:
        """A document as its best passage, scored by its cosines (best entry, whole document) and BM25."""
        dense = max(candidates[r] for r in rows)
        similarity = dense if document is None else (1 - DOCUMENT_SHARE) * dense + DOCUMENT_SHARE * document
        kw = float(max(keyword[r] for r in rows)) if keyword is not None else 0.0
        score = kw if mode == "bm25" else similarity + (weight * kw if mode == "hybrid" else 0.0)
        best, more = self._passages_for(doc_key, rows, candidates, keyword)
        more_chunks = tuple(self.chunks[r] for r in more)
        announced = self._announced(doc_key, best)
        return Hit(
            self.chunks[best], score, dense, kw, document, more_chunks, announced, whole=self._whole(doc_key)
        )

    def _follow_pointers(self, hits: list[Hit], cosines, keyword, mode, weight) -> list[Hit]:
        """The ranking with the documents a pointer document names moved up to follow it, at its score."""
        if not any(hit.chunk.doc_key in self.pointers for hit in hits):
            return hits
        by_key = {hit.chunk.doc_key: hit for hit in hits}
        ranked: list[Hit] = []
        placed: set[str] = set()
        for hit in hits:
            if hit.chunk.doc_key in placed:
                continue
            ranked.append(hit)
            placed.add(hit.chunk.doc_key)
            for target in self.pointers.get(hit.chunk.doc_key, ()):
                if target in placed:
                    continue
                named = by_key.get(target) or self._unretrieved_hit(target, cosines, keyword, mode, weight)
                ranked.append(replace(named, score=hit.score, named_by=hit.chunk.doc_key))
                placed.add(target)
        return ranked

    def _unretrieved_hit(self, doc_key, cosines, keyword, mode, weight) -> Hit:
        """A document the search did not reach, scored as if it had."""
        rows = self.rows_by_doc[doc_key]
        document_row = self.document_rows.get(doc_key)
        found = cosines([*rows, *([document_row] if document_row is not None else [])])
        candidates = dict(zip(rows, found[: len(rows)], strict=True))
        document = found[-1] if document_row is not None and mode != "bm25" else None
        return self._document_hit(doc_key, rows, candidates, document, keyword, mode, weight)

    def _passages_for(self, doc_key, rows, candidates, keyword) -> tuple[int, list[int]]:
        """The passage that stands for a document, and the runners-up that match the query nearly as well.

        When the query restates the document's title, its opening answers and stands alone.
        """
        passages = [r for r in rows if self.chunks[r].kind == "passage"]
        titles = [r for r in rows if self.chunks[r].kind == "title"]
        doc_rows = self.rows_by_doc[doc_key]
        opening = next((r for r in doc_rows if self.chunks[r].kind == "passage"), None)
        if titles and opening is not None and candidates[titles[0]] >= TITLE_QUESTION_SIMILARITY:
            return opening, []
        if not passages:
            return (opening if opening is not None else doc_rows[0]), []

        def fit(row: int) -> float:
            thin = prose_words(self.chunks[row].text) < MIN_PROSE_WORDS
            bonus = keyword[row] if keyword is not None else 0.0
            return candidates[row] + bonus - (THIN_PASSAGE_PENALTY if thin else 0.0)

        fits = {row: fit(row) for row in passages}
        best, *rest = sorted(passages, key=fits.__getitem__, reverse=True)
        floor = fits[best] - MORE_PASSAGE_MARGIN
        return best, [row for row in rest if fits[row] >= floor][:MORE_PASSAGES]

    def _passage_rows(self, doc_key: str) -> list[int]:
        """The rows of a document's passages, in reading order."""
        return [r for r in self.rows_by_doc[doc_key] if self.chunks[r].kind == "passage"]

    def _whole(self, doc_key: str) -> tuple[Chunk, ...]:
        """The document's passages in reading order when they add up to at most WHOLE_DOCUMENT_WORDS words."""
        passages = tuple(self.chunks[r] for r in self._passage_rows(doc_key))
        return passages if sum(len(p.text.split()) for p in passages) <= WHOLE_DOCUMENT_WORDS else ()

    def _announced(self, doc_key: str, row: int) -> Chunk | None:
        """The passage after `row` in its document when `row` ends by announcing it ("Here's how …:")."""
        if not announces_what_follows(self.chunks[row].text):
            return None
        passages = self._passage_rows(doc_key)
        position = passages.index(row) if row in passages else len(passages)
        return self.chunks[passages[position + 1]] if position + 1 < len(passages) else None


class IndexVersion(RankedIndex):
    """Chunks, their vectors (FAISS, inner product on unit vectors) and a BM25 index, saved as one folder."""

    def __init__(self, store: FAISS, manifest: dict, keyword_index: bm25s.BM25 | None = None):
        self.store = store
        self.manifest = manifest
        self.keyword_index = keyword_index
        # Whether its files were checked against recorded checksums when it was loaded.
        self.verified = False
        self._layout()

    @classmethod
    def empty(cls, embeddings: Embeddings, dimension: int, manifest: dict) -> IndexVersion:
        """A version with no chunks yet; vectors are stored as float16 (exact search, half the memory)."""
        store = FAISS(
            embedding_function=embeddings,
            index=faiss.IndexScalarQuantizer(
                dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            ),
            docstore=InMemoryDocstore(),
            index_to_docstore_id={},
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        return cls(store, manifest)

    @classmethod
    def load(cls, path: Path, embeddings: Embeddings) -> IndexVersion:
        """Read a saved version folder after checking its files; raise IndexDamaged if it cannot be used."""
        verified = verify(path)
        try:
            version = cls._read(path, embeddings)
        except Exception as error:  # truncated or rewritten files of a version without checksums
            raise damaged(path, f"it could not be read ({type(error).__name__}: {error})") from error
        version.verified = verified
        return version

    @classmethod
    def _read(cls, path: Path, embeddings: Embeddings) -> IndexVersion:
        manifest = json.loads((path / "manifest.json").read_text())
        index = faiss.read_index(str(path / "vectors.faiss"))
        documents, mapping = {}, {}
        with (path / "chunks.jsonl").open() as lines:
            for position, line in enumerate(lines):
                record = json.loads(line)
                text = record.pop("text")
                documents[record["chunk_id"]] = Document(page_content=text, metadata=record)
                mapping[position] = record["chunk_id"]
        store = FAISS(
            embedding_function=embeddings,
            index=index,
            docstore=InMemoryDocstore(documents),
            index_to_docstore_id=mapping,
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        keyword = bm25s.BM25.load(str(path / "keywords")) if (path / "keywords").exists() else None
        return cls(store, manifest, keyword)

    def _layout(self) -> None:
        """Chunks in FAISS row order, with the positional views ranking uses."""
        docstore, ids = self.store.docstore, self.store.index_to_docstore_id
        documents = [docstore.search(ids[position]) for position in range(len(ids))]
        self._arrange([Chunk.from_metadata(d.page_content, d.metadata) for d in documents])

    def _cosines(self, rows: list[int], vector: np.ndarray) -> list[float]:
        """Cosine of the query with the stored vectors of the given rows."""
        if not rows:
            return []
        return (self.store.index.reconstruct_batch(np.array(rows, dtype=np.int64)) @ vector).tolist()

    def remove_documents(self, doc_keys: set[str]) -> None:
        """Drop every chunk of the given documents."""
        ids = [c.chunk_id for c in self.chunks if c.doc_key in doc_keys]
        if ids:
            self.store.delete(ids)
        self._layout()

    def add_chunks(self, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        """Add chunks with their precomputed vectors."""
        if not chunks:
            return
        pairs = [(c.text, v) for c, v in zip(chunks, vectors, strict=True)]
        self.store.add_embeddings(pairs, [c.to_metadata() for c in chunks], ids=[c.chunk_id for c in chunks])
        self._layout()

    def build_keyword_index(self) -> None:
        """(Re)build BM25 over every chunk, in FAISS row order; costs no embedding."""
        if not self.chunks:
            self.keyword_index = None
            return
        index = bm25s.BM25()
        corpus = bm25s.tokenize(
            [c.keyword_text() for c in self.chunks], stopwords="en", stemmer=_STEMMER, show_progress=False
        )
        index.index(corpus, show_progress=False)
        self.keyword_index = index

    def save(self, path: Path) -> None:
        """Write the version into an empty folder."""
        path.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.store.index, str(path / "vectors.faiss"))
        with (path / "chunks.jsonl").open("w") as out:
            for chunk in self.chunks:
                out.write(json.dumps({**chunk.to_metadata(), "text": chunk.text}) + "\n")
        if self.keyword_index is not None:
            self.keyword_index.save(str(path / "keywords"))
        manifest = {**self.manifest, MANIFEST_KEY: True}
        (path / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        write_checksums(path)

    def query_scores(self, vector: np.ndarray, query_text: str, fetch: int, mode: str) -> QueryScores:
        """Nearest rows from FAISS, keyword rows from BM25 (both exact), cosines rebuilt from FAISS."""
        candidates: dict[int, float] = {}
        if mode != "bm25":
            scores, rows = self.store.index.search(vector[None, :], fetch)
            candidates = {int(r): float(s) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0}
        keyword = self._keyword_scores(query_text) if mode != "dense" else None
        if keyword is not None and keyword.max() > 0:
            top = np.argpartition(-keyword, min(fetch, len(keyword) - 1))[:fetch]
            missing = [int(r) for r in top if keyword[r] > 0 and int(r) not in candidates]
            candidates.update(zip(missing, self._cosines(missing, vector), strict=True))
            keyword = keyword / keyword.max()
        return QueryScores(
            candidates,
            keyword,
            cosines=lambda rows: self._cosines(rows, vector),
            coverage=lambda doc_keys: self.keyword_coverage(query_text, doc_keys),
        )

    def _keyword_scores(self, query_text: str) -> np.ndarray:
        tokens = tokenize([query_text])[0]
        if self.keyword_index is None or not tokens:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return self.keyword_index.get_scores(tokens)

    def keyword_coverage(self, query_text: str, doc_keys: list[str]) -> float:
        """IDF-weighted share of the query's words that occur in the given documents (0..1)."""
        tokens = set(tokenize([query_text])[0])
        if not tokens or self.keyword_index is None:
            return 0.0
        rows = np.array([r for key in doc_keys for r in self.rows_by_doc.get(key, [])], dtype=np.int64)
        postings = self.keyword_index.scores
        vocabulary = self.keyword_index.vocab_dict
        total = covered = 0.0
        for token in tokens:
            token_id = vocabulary.get(token)
            docs = (
                postings["indices"][postings["indptr"][token_id] : postings["indptr"][token_id + 1]]
                if token_id is not None
                else np.empty(0, dtype=np.int64)
            )
            idf = math.log((len(self.chunks) + 1) / (len(docs) + 0.5))
            total += idf
            if len(docs) and np.isin(docs, rows).any():
                covered += idf
        return covered / total if total > 0 else 0.0
