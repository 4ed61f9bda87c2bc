"""Index backends at scale: ingest, search latency and HNSW recall of the files backend vs PostgreSQL.

A synthetic knowledge base of N index entries is written through each backend's real write + publish path
(vectors given, so no embedding time is counted), loaded as a replica loads it, then searched with 200
queries: the vector search alone, the keyword search alone, and the combined rated search a question makes
(`aquery` + `rate`, hybrid, k=5, query embedding excluded). Recall@10 of the vector search is measured
against exact numpy search over the stored (float16-rounded) vectors.

The corpus imitates the dev help centers rather than uniform noise (on which HNSW recall says little):
- vectors: each document's centre is drawn near a topic made of two real all-MiniLM-L6-v2 passage vectors
  of the dev indexes (so the anisotropy of real embeddings is kept), its passages near its centre, its
  whole-document entry the mean of its passages, its title entry near its centre; the noise levels give the
  dev sets' cosines (passages of one document ~0.67 apart, ~0.86 to their document entry);
- texts: the passage lengths of the dev sets; half the words from the topic's real passages, half from
  all their words (so word frequencies are the help centers');
- queries: a vector near a document's centre (cosine ~0.57 to its passages, as a paraphrased question has)
  and five words of that document.

Run each size and backend in its own process (memory is released between them):
  nice -n 10 python bench/backend_scale.py --sizes 100000 1000000 --out bench/data/backend_scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding
from measure import current_rss_mb, latency_stats, load_average, peak_rss_mb, print_line

from knowledge.backend import FilesBackend, NewVersion
from knowledge.documents import Chunk
from knowledge.index import FETCH_K, IndexVersion, tokenize

DEV_INDEXES = [Path(f"/work/data/{name}/index") for name in ("lohelp", "pyfaq", "acme")]
DIMENSION = 384  # all-MiniLM-L6-v2
QUERIES = 200
WARMUP_QUERIES = 20
SEED = 7
# Noise norms (relative to a unit vector): cosine to what it perturbs is 1/sqrt(1 + s^2).
TOPIC_MIX = 0.6  # a topic = first real vector + 0.6 x a second one
DOC_NOISE = 0.62  # document centre to topic: cosine ~0.85
PASSAGE_NOISE = 0.70  # passage to document centre ~0.82, so two passages of a document ~0.67
TITLE_NOISE = 0.88  # title entry to document centre ~0.75
QUERY_NOISE = 1.02  # query to document centre ~0.70, to its passages ~0.57
TOPIC_WORD_SHARE = 0.5
QUERY_WORDS = 5
RECALL_K = 10


def dev_material() -> tuple[np.ndarray, list[list[str]], list[str], list[int]]:
    """Real passage vectors, their words and titles, and passage lengths in words, from the dev indexes."""
    import faiss

    vectors, words, titles, lengths = [], [], [], []
    for index in DEV_INDEXES:
        version = sorted(index.glob("v*"))[-1]
        stored = faiss.read_index(str(version / "vectors.faiss"))
        all_vectors = stored.reconstruct_n(0, stored.ntotal)
        with (version / "chunks.jsonl").open() as lines:
            for row, line in enumerate(lines):
                record = json.loads(line)
                if record["kind"] != "passage":
                    continue
                vectors.append(all_vectors[row])
                words.append(record["text"].split())
                titles.append(record["title"])
                lengths.append(len(words[-1]))
    return np.asarray(vectors, dtype=np.float32), words, titles, lengths


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _near(centres: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at cosine 1/sqrt(1 + noise^2) of the given unit vectors, in random directions."""
    gaussian = rng.standard_normal(centres.shape, dtype=np.float32)
    return _unit(centres + noise * _unit(gaussian))


class Corpus:
    """A synthetic knowledge base of `size` index entries: chunks, their vectors, and the queries."""

    def __init__(self, size: int, seed: int = SEED, texts: bool = True):
        """Without `texts` the passages are empty (the rest is the same corpus)."""
        rng = np.random.default_rng(seed)
        chooser = random.Random(seed)
        real, real_words, real_titles, lengths = dev_material()
        everything = [word for words in real_words for word in words]
        self.chunks: list[Chunk] = []
        vectors: list[np.ndarray] = []
        centres: list[np.ndarray] = []
        self.doc_words: list[list[str]] = []
        doc = 0
        while len(self.chunks) < size:
            batch = 4096
            first, second = rng.integers(0, len(real), batch), rng.integers(0, len(real), batch)
            topics = _unit(real[first] + TOPIC_MIX * real[second])
            doc_centres = _near(topics, DOC_NOISE, rng)
            for position in range(batch):
                passages = int(rng.integers(1, 9))  # 1-8, mean 4.5 (the dev sets: 3.0-6.2)
                if len(self.chunks) + passages + 2 > size:
                    passages = size - len(self.chunks) - 2
                    if passages < 1:
                        self._pad(size, vectors, doc_centres[position])
                        break
                topic_words = real_words[first[position]] + real_words[second[position]]
                key = f"bench|doc{doc:07d}"
                title = f"{real_titles[first[position]]} {chooser.choice(topic_words)}"
                centre = doc_centres[position]
                passage_vectors = _near(np.repeat(centre[None, :], passages, 0), PASSAGE_NOISE, rng)
                passage_texts = []
                for number in range(passages):
                    length = chooser.choice(lengths)
                    own = int(rng.binomial(length, TOPIC_WORD_SHARE))
                    words = chooser.choices(topic_words, k=own) + chooser.choices(everything, k=length - own)
                    chooser.shuffle(words)
                    passage_texts.append(" ".join(words) if texts else "")
                    self.chunks.append(
                        Chunk(f"{key}#{number}", key, f"doc{doc:07d}", title, passage_texts[-1], "bench")
                    )
                vectors.extend(passage_vectors)
                base = self.chunks[-1]
                self.chunks.append(
                    Chunk(f"{key}#title", key, base.doc_id, title, title, "bench", kind="title")
                )
                vectors.append(_near(centre[None, :], TITLE_NOISE, rng)[0])
                self.chunks.append(base.document_entry())
                vectors.append(_unit(passage_vectors.mean(0, keepdims=True))[0])
                centres.append(centre)
                self.doc_words.append(" ".join(passage_texts).split())
                doc += 1
                if len(self.chunks) >= size:
                    break
        self.vectors = np.asarray(vectors, dtype=np.float32)
        asked = rng.choice(len(centres), QUERIES + WARMUP_QUERIES, replace=False)
        self.query_vectors = _near(np.asarray(centres)[asked], QUERY_NOISE, rng)
        self.query_texts = [
            " ".join(chooser.sample(self.doc_words[d], min(QUERY_WORDS, len(self.doc_words[d]))))
            for d in asked
        ]
        self.documents = doc

    def _pad(self, size: int, vectors: list, centre: np.ndarray) -> None:
        """Fill the last few entries with one-passage documents' titles (rare: at most two entries)."""
        while len(self.chunks) < size:
            key = f"bench|pad{len(self.chunks)}"
            self.chunks.append(Chunk(f"{key}#title", key, key, "pad", "pad", "bench", kind="title"))
            vectors.append(centre)

    @property
    def passages(self) -> int:
        return sum(chunk.kind == "passage" for chunk in self.chunks)

    def exact_top(self, k: int) -> list[set[int]]:
        """Rows of the k nearest stored vectors (float16-rounded, as both backends store them) per query."""
        stored = self.vectors.astype(np.float16).astype(np.float32)
        queries = self.query_vectors[WARMUP_QUERIES:]
        best = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.zeros((len(queries), k), dtype=np.int64)
        for start in range(0, len(stored), 200_000):
            scores = queries @ stored[start : start + 200_000].T
            merged = np.concatenate([best, scores], axis=1)
            merged_rows = np.concatenate(
                [rows, np.arange(start, start + scores.shape[1])[None, :].repeat(len(queries), 0)], 1
            )
            top = np.argpartition(-merged, k, axis=1)[:, :k]
            best = np.take_along_axis(merged, top, 1)
            rows = np.take_along_axis(merged_rows, top, 1)
        return [set(map(int, r)) for r in rows]

    def new_version(self) -> NewVersion:
        return NewVersion(
            base=None,
            removed=set(),
            chunks=self.chunks,
            vectors=self.vectors,  # rows of a float32 array: both backends read them as sequences
            manifest={"counts": {}, "documents": {}},
            dimension=DIMENSION,
            embeddings=DeterministicFakeEmbedding(size=DIMENSION),
        )


async def time_queries(corpus: Corpus, search, limit: int | None = None) -> dict:
    """Latency of `search(vector, text)` over the queries (the first `limit` of them), after a warm-up."""
    for vector, text in zip(
        corpus.query_vectors[:WARMUP_QUERIES], corpus.query_texts[:WARMUP_QUERIES], strict=True
    ):
        await search(vector, text)
    samples, loads = [], []
    end = WARMUP_QUERIES + (limit or QUERIES)
    for vector, text in zip(
        corpus.query_vectors[WARMUP_QUERIES:end], corpus.query_texts[WARMUP_QUERIES:end], strict=True
    ):
        started = time.perf_counter()
        await search(vector, text)
        samples.append(time.perf_counter() - started)
        loads.append(load_average())
    return {**latency_stats(samples), "load": round(float(np.mean(loads)), 2)}


def recall(found: list[list[int]], exact: list[set[int]]) -> float:
    return round(
        float(np.mean([len(set(f[:RECALL_K]) & e) / RECALL_K for f, e in zip(found, exact, strict=True)])), 4
    )


async def combined(version, vector: np.ndarray, text: str):
    """The search a question makes once its vector is known (KnowledgeBase.retrieve, default settings)."""
    scores = await version.aquery(vector.tolist(), text, k=5, mode="hybrid", rated=True)
    return version.rate(scores, k=5, mode="hybrid")


async def ingest(backend, corpus: Corpus) -> dict:
    """Write and publish the corpus as a sync does once its vectors are computed; seconds taken."""
    started = time.perf_counter()
    written = await backend.write(corpus.new_version())
    wrote = time.perf_counter() - started
    await backend.publish(written, {})
    seconds = time.perf_counter() - started
    return {
        "write_s": round(wrote, 1),
        "ingest_s": round(seconds, 1),
        "ingest_per_s": round(len(corpus.chunks) / seconds),
        "ingest_load": load_average(),
    }


async def load(backend):
    """The published version, read as a replica reads it when it starts; and the seconds it took."""
    gc.collect()
    started = time.perf_counter()
    sound = await backend.load_newest_sound(DeterministicFakeEmbedding(size=DIMENSION))
    return sound.version, time.perf_counter() - started


async def bench_files(corpus: Corpus, folder: Path, limit: int | None) -> dict:
    backend = FilesBackend.in_data_dir(folder)
    ingested = await ingest(backend, corpus)
    version: IndexVersion
    version, loaded = await load(backend)
    fetch = min(len(version), FETCH_K)

    async def vector_search(vector, text):
        return version.store.index.search(vector[None, :], fetch)

    async def keyword_search(vector, text):
        scores = version._keyword_scores(text)
        return np.argpartition(-scores, fetch)[:fetch]

    found = [
        version.store.index.search(q[None, :], fetch)[1][0].tolist()
        for q in corpus.query_vectors[WARMUP_QUERIES:]
    ]
    return {
        "configuration": "FAISS IndexScalarQuantizer fp16, inner product (exact); bm25s in memory",
        **ingested,
        "load_s": round(loaded, 1),
        "vector": await time_queries(corpus, vector_search),
        "keyword": await time_queries(corpus, keyword_search, limit),
        "combined": await time_queries(corpus, lambda v, t: combined(version, v, t), limit),
        "recall_at_10": recall(found, corpus.exact_top(RECALL_K)),
        "disk_mb": round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20),
    }


async def bench_faiss_vectors(corpus: Corpus, folder: Path, limit: int | None) -> dict:
    """The files backend's vector search alone: its FAISS index as IndexVersion.empty makes it, searched as
    query_scores searches it (the index holds no texts, so nothing else of the backend is measured)."""
    import faiss

    started = time.perf_counter()
    index = faiss.IndexScalarQuantizer(DIMENSION, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    index.add(corpus.vectors)
    added = time.perf_counter() - started
    fetch = min(index.ntotal, FETCH_K)

    async def vector_search(vector, text):
        return index.search(vector[None, :], fetch)

    found = [index.search(q[None, :], fetch)[1][0].tolist() for q in corpus.query_vectors[WARMUP_QUERIES:]]
    return {
        "configuration": "FAISS IndexScalarQuantizer fp16, inner product (exact): vector search only",
        "faiss_add_s": round(added, 1),
        "vector": await time_queries(corpus, vector_search),
        "recall_at_10": recall(found, corpus.exact_top(RECALL_K)),
    }


# The HNSW graph of 1M 384-dim vectors takes ~2 GB; pgvector builds it far faster while it fits in memory.
VECTORS_BUILD_MEMORY = "4GB"


async def bench_pgvector_vectors(corpus: Corpus, folder: Path, limit: int | None) -> dict:
    """The PostgreSQL backend's vector search alone: the same HNSW index (pgvector defaults, vector_ip_ops)
    on the same float16-rounded vectors, searched with the backend's ef_search and LIMIT; the table holds
    nothing else and is loaded by binary COPY, and the graph is built in memory (maintenance_work_mem)."""
    import pgserver
    import psycopg
    from pgvector.psycopg import register_vector_async
    from psycopg import sql

    from knowledge.postgres import MIN_EF_SEARCH

    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE bench;")
        async with await psycopg.AsyncConnection.connect(
            server.get_uri("bench"), autocommit=True
        ) as connection:
            await connection.execute("CREATE EXTENSION vector")
            await register_vector_async(connection)
            await connection.execute(
                f"CREATE TABLE passages (row integer PRIMARY KEY, embedding vector({DIMENSION}))"
            )
            stored = corpus.vectors.astype(np.float16).astype(np.float32)
            started = time.perf_counter()
            async with (
                connection.cursor() as cursor,
                cursor.copy("COPY passages (row, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["int4", "vector"])
                for row, vector in enumerate(stored):
                    await copy.write_row((row, vector))
            copied = time.perf_counter() - started
            await connection.execute(f"SET maintenance_work_mem = '{VECTORS_BUILD_MEMORY}'")
            started = time.perf_counter()
            await connection.execute("CREATE INDEX ON passages USING hnsw (embedding vector_ip_ops)")
            built = time.perf_counter() - started
            build_load = load_average()
            fetch = min(len(stored), FETCH_K)
            ef_search = max(MIN_EF_SEARCH, fetch)
            await connection.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef_search)))

            async def vector_search(vector, text):
                cursor = await connection.execute(
                    "SELECT row, -(embedding <#> %s) FROM passages ORDER BY embedding <#> %s LIMIT %s",
                    (vector, vector, fetch),
                )
                return await cursor.fetchall()

            vector_figures = await time_queries(corpus, vector_search)
            found = [
                [row for row, _ in await vector_search(q, "")] for q in corpus.query_vectors[WARMUP_QUERIES:]
            ]
            cursor = await connection.execute("SELECT pg_total_relation_size('passages')")
            size = (await cursor.fetchone())[0]
        return {
            "configuration": f"pgvector HNSW m=16 ef_construction=64 (defaults), ef_search={ef_search}: vector search only;"
            f" built with maintenance_work_mem={VECTORS_BUILD_MEMORY}",
            "copy_s": round(copied, 1),
            "hnsw_build_s": round(built, 1),
            "hnsw_build_load": build_load,
            "build_notices": server_log_lines(Path(server.log)),
            "vector": vector_figures,
            "recall_at_10": recall(found, corpus.exact_top(RECALL_K)),
            "disk_mb": round(size / 2**20),
        }
    finally:
        server.cleanup()


async def bench_postgres(corpus: Corpus, folder: Path, limit: int | None, build_memory: str | None) -> dict:
    import pgserver

    from knowledge.postgres import MIN_EF_SEARCH, PostgresBackend, _table

    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE bench;")
        backend = PostgresBackend(server.get_uri("bench"), build_memory)
        async with backend.connect() as connection:
            settings = {}
            for name in (
                "server_version",
                "shared_buffers",
                "maintenance_work_mem",
                "max_parallel_maintenance_workers",
                "work_mem",
            ):
                cursor = await connection.execute(f"SHOW {name}")
                settings[name] = (await cursor.fetchone())[0]
            cursor = await connection.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            settings["pgvector"] = (await cursor.fetchone())[0]
        settings["build_memory"] = backend.build_memory  # maintenance_work_mem of the index build
        server.psql(
            "ALTER SYSTEM SET log_min_duration_statement = 1000; ALTER SYSTEM SET log_min_messages = notice;"
        )
        server.psql("SELECT pg_reload_conf();")
        ingested = await ingest(backend, corpus)
        slow_statements = server_log_lines(Path(server.log))
        version, loaded = await load(backend)
        table = _table(version.version_id)
        fetch = min(len(version), FETCH_K)
        async with backend.connect() as connection:

            async def vector_search(vector, text):
                return await version._nearest(connection, table, vector, fetch)

            async def keyword_search(vector, text):
                query = Counter(tokenize([text])[0])
                entries = await version._entries(connection, list(query))
                weights = version._weights(query, entries)
                return await version._keyword_top(connection, table, query, weights, fetch)

            async def connect_only(vector, text):
                async with backend.connect():
                    pass

            connect_figures = await time_queries(corpus, connect_only, limit)
            vector_figures = await time_queries(corpus, vector_search)
            keyword_figures = await time_queries(corpus, keyword_search, limit)
            found = [
                [row for row, _ in await version._nearest(connection, table, q, fetch)]
                for q in corpus.query_vectors[WARMUP_QUERIES:]
            ]
            cursor = await connection.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (f"index_passages_{version.version_id}",)
            )
            size = (await cursor.fetchone())[0]
            cursor = await connection.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (f"index_postings_{version.version_id}",)
            )
            postings_size = (await cursor.fetchone())[0]
        return {
            "configuration": f"pgvector HNSW m=16 ef_construction=64 (defaults), ef_search={max(MIN_EF_SEARCH, fetch)}; "
            "BM25 impacts of each term's best postings",
            "server": settings,
            **ingested,
            "ingest_statements": slow_statements,
            "load_s": round(loaded, 1),
            "vector": vector_figures,
            "keyword": keyword_figures,
            "combined": await time_queries(corpus, lambda v, t: combined(version, v, t), limit),
            "connect": connect_figures,  # a new connection, as every search of the product opens
            "recall_at_10": recall(found, corpus.exact_top(RECALL_K)),
            "disk_mb": round(size / 2**20),
            "postings_disk_mb": round(postings_size / 2**20),
        }
    finally:
        server.cleanup()


def server_log_lines(log: Path) -> list[str]:
    """The server's statements of a second or more (their duration first) and its notices, shortened."""
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if "duration:" in line or "NOTICE:" in line:
            lines.append(line.split("LOG:  ")[-1].split("]")[-1].strip()[:140])
    return lines


def run_one(size: int, backend: str, limit: int | None, build_memory: str | None = None) -> dict:
    started = time.perf_counter()
    corpus = Corpus(size, texts=not backend.endswith("-vectors"))
    generated = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as folder:
        Path(folder).chmod(0o777)  # pgserver runs PostgreSQL as its own user when started by root
        run = {
            "files": bench_files,
            "postgres": functools.partial(bench_postgres, build_memory=build_memory),
            "faiss-vectors": bench_faiss_vectors,
            "pgvector-vectors": bench_pgvector_vectors,
        }[backend]
        figures = asyncio.run(run(corpus, Path(folder), limit))
    return {
        "size": size,
        "backend": backend,
        "passages": corpus.passages,
        "documents": corpus.documents,
        "generate_s": round(generated, 1),
        **figures,
        "peak_rss_mb": round(peak_rss_mb()),
        "rss_mb": round(current_rss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["files", "postgres"],
        choices=["files", "postgres", "faiss-vectors", "pgvector-vectors"],
    )
    parser.add_argument("--out", type=Path, help="append one JSON line per run to this file")
    parser.add_argument(
        "--keyword-queries",
        type=int,
        help="time keyword and combined searches on this many queries (default: all)",
    )
    parser.add_argument(
        "--build-memory",
        help="PostgreSQL: maintenance_work_mem of the index build, as HELPDESK_DATABASE_BUILD_MEMORY (default 1GB)",
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.sizes[0], args.backends[0], args.keyword_queries, args.build_memory)))
        return
    for size in args.sizes:
        for backend in args.backends:
            command = [sys.executable, __file__, "--one", "--sizes", str(size), "--backends", backend]
            if args.keyword_queries:
                command += ["--keyword-queries", str(args.keyword_queries)]
            if args.build_memory:
                command += ["--build-memory", args.build_memory]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                print(result.stderr[-3000:], file=sys.stderr)
                continue
            print_line(result.stdout.strip().splitlines()[-1], args.out)


if __name__ == "__main__":
    main()
