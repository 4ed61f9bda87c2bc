"""Retrieval benchmark: IndexVersion.retrieve latency and memory at 10k–100k chunks of replicated real passages."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from measure import current_rss_mb, latency_stats, load_average, peak_rss_mb, torch_threads
from pydocs import DEFAULT_CACHE, copy_pages, ensure_html, select_pages

from bot.runtime import make_chunker
from bot.settings import Settings
from knowledge.chunking import Chunker
from knowledge.documents import Chunk, Skipped, SourceDocument
from knowledge.embeddings import PACKAGED_MODEL, load_embeddings
from knowledge.index import COVERAGE_DOCS, IndexVersion, with_document_vectors
from knowledge.sources import SourceOptions, open_source

PYFAQ = Path("/work/shared/eval/pyfaq")
TARGET_P50_MS = 20.0
EMBED_BATCH = 64


async def chunks_of_folder(folder: Path, chunker: Chunker) -> tuple[list[Chunk], int]:
    """Every chunk of a folder as a sync would make it (FileSource + Chunker), and the count of skipped inputs."""
    source = open_source(str(folder), SourceOptions())
    chunks, skipped = [], 0
    async for item in source.scan():
        if isinstance(item, Skipped):
            skipped += 1
            continue
        for document in await item.load():
            if isinstance(document, SourceDocument):
                chunks.extend(chunker.split(f"{source.name}|{document.doc_id}", document))
            else:
                skipped += 1
    return chunks, skipped


def real_base(args, embeddings) -> tuple[list[Chunk], np.ndarray, dict]:
    """Real passages (the Python FAQ plus Python-doc pages) with their real vectors, cached between runs."""
    html, deb = ensure_html(Path(args.cache))
    pages = select_pages(html, args.pages)
    faq_docs = sorted(Path(args.faq_docs).glob("*.md"))
    chunker = make_chunker(Settings())
    key = hashlib.sha256(
        json.dumps(
            [
                deb,
                [str(p.relative_to(html)) for p in pages],
                [(p.name, p.stat().st_size) for p in faq_docs],
                PACKAGED_MODEL,
                chunker.config,
            ]
        ).encode()
    ).hexdigest()[:16]
    cached = Path(args.cache).expanduser() / f"retrieval-base-{key}"
    info = {"package": deb, "pages": len(pages), "faq_docs": len(faq_docs), "cache": str(cached)}
    if cached.with_suffix(".npy").exists() and not args.refresh:
        chunks = [
            Chunk.from_metadata(r.pop("text"), r)
            for r in map(json.loads, cached.with_suffix(".jsonl").read_text().splitlines())
        ]
        return chunks, np.load(cached.with_suffix(".npy")), {**info, "from_cache": True}

    log(f"extracting {len(faq_docs)} FAQ documents and {len(pages)} pages of {deb}…")
    faq_chunks, faq_skipped = asyncio.run(chunks_of_folder(Path(args.faq_docs), chunker))
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as tmp:
        copy_pages(pages, html, Path(tmp))
        doc_chunks, doc_skipped = asyncio.run(chunks_of_folder(Path(tmp), chunker))
    chunks = faq_chunks + doc_chunks
    started = time.perf_counter()
    vectors = []
    for start in range(0, len(chunks), EMBED_BATCH):
        vectors.extend(
            embeddings.embed_documents([c.embedding_text() for c in chunks[start : start + EMBED_BATCH]])
        )
        log(f"  embedded {len(vectors)}/{len(chunks)} real chunks")
    chunks, vectors = with_document_vectors(chunks, vectors)
    matrix = np.asarray(vectors, dtype=np.float32)
    info["embed_seconds"] = round(time.perf_counter() - started, 1)
    info["skipped"] = faq_skipped + doc_skipped
    cached.parent.mkdir(parents=True, exist_ok=True)
    with cached.with_suffix(".jsonl").open("w") as out:
        for chunk in chunks:
            out.write(json.dumps({**chunk.to_metadata(), "text": chunk.text}) + "\n")
    np.save(cached.with_suffix(".npy"), matrix)
    return chunks, matrix, {**info, "from_cache": False}


def replicate(
    chunks: list[Chunk], vectors: np.ndarray, total: int, noise: float, seed: int
) -> tuple[list[Chunk], np.ndarray]:
    """Copies of the real chunks up to `total`: copy 0 is the original, copy r gets doc id `<id>~r`
    and its vector plus gaussian noise, re-normalised to unit length."""
    rng = np.random.default_rng(seed)
    rows = np.arange(total) % len(chunks)
    copies = np.arange(total) // len(chunks)
    jitter = rng.standard_normal((total, vectors.shape[1]), dtype=np.float32) * noise
    jitter[copies == 0] = 0.0
    out_vectors = vectors[rows] + jitter
    out_vectors /= np.linalg.norm(out_vectors, axis=1, keepdims=True)
    out_chunks = []
    for row, copy in zip(rows.tolist(), copies.tolist(), strict=True):
        chunk = chunks[row]
        if copy:
            doc_key, doc_id = f"{chunk.doc_key}~{copy}", f"{chunk.doc_id}~{copy}"
            chunk = dataclasses.replace(
                chunk,
                chunk_id=f"{doc_key}#{chunk.chunk_id.rsplit('#', 1)[1]}",
                doc_key=doc_key,
                doc_id=doc_id,
            )
        out_chunks.append(chunk)
    return out_chunks, out_vectors


def build_index(chunks: list[Chunk], vectors: np.ndarray, embeddings) -> tuple[IndexVersion, dict]:
    """An IndexVersion over the chunks, built the way a sync builds one, with the time of each step."""
    started = time.perf_counter()
    version = IndexVersion.empty(embeddings, vectors.shape[1], {})
    version.add_chunks(chunks, list(vectors))
    added = time.perf_counter()
    version.build_keyword_index()
    built = time.perf_counter()
    return version, {
        "add_chunks_seconds": round(added - started, 2),
        "keyword_index_seconds": round(built - added, 2),
        "build_seconds": round(built - started, 2),
    }


def save_and_load(version: IndexVersion, embeddings) -> dict:
    """Time writing the version to disk and reading it back, as a sync and the bot's first search do."""
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as tmp:
        folder = Path(tmp) / "version"
        _, saved = timed(version.save, folder)
        size = sum(file.stat().st_size for file in folder.rglob("*") if file.is_file())
        loaded, load_seconds = timed(IndexVersion.load, folder, embeddings)
        assert len(loaded) == len(version)
    return {
        "save_seconds": round(saved, 2),
        "load_seconds": round(load_seconds, 2),
        "disk_mb": round(size / 2**20, 1),
    }


def timed(call, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - started


def measure(
    version: IndexVersion,
    questions: list[dict],
    query_vectors: list[list[float]],
    embeddings,
    k: int,
    warmup: int,
) -> dict:
    """Latency of the index part, of its main steps, and of embedding + retrieve; plus recall@k as a sanity check."""
    for question, vector in zip(questions[:warmup], query_vectors, strict=False):
        version.retrieve(vector, question["question"], k=k)
    index, dense, keyword, coverage, end_to_end, found, answerable = [], [], [], [], [], 0, 0
    for question, vector in zip(questions, query_vectors, strict=True):
        text = question["question"]
        retrieval, seconds = timed(version.retrieve, vector, text, k=k)
        index.append(seconds)
        query = np.asarray(vector, dtype=np.float32)[None, :]
        dense.append(timed(version.store.index.search, query, max(100, k * 10))[1])
        keyword.append(timed(version._keyword_scores, text)[1])
        top_docs = [hit.chunk.doc_key for hit in retrieval.hits[:COVERAGE_DOCS]]
        coverage.append(timed(version.keyword_coverage, text, top_docs)[1])
        if question["gold_doc_ids"]:
            answerable += 1
            found += any(hit.chunk.doc_id.split("~")[0] in question["gold_doc_ids"] for hit in retrieval.hits)
    for question in questions:
        started = time.perf_counter()
        version.retrieve(embeddings.embed_query(question["question"]), question["question"], k=k)
        end_to_end.append(time.perf_counter() - started)
    return {
        "index": latency_stats(index),
        "index_steps": {
            "faiss_search": latency_stats(dense),
            "bm25_scores": latency_stats(keyword),
            "keyword_coverage": latency_stats(coverage),
        },
        "end_to_end": latency_stats(end_to_end),
        "recall_at_k": round(found / answerable, 3) if answerable else None,
    }


def run(args) -> dict:
    started = time.perf_counter()
    embeddings = load_embeddings()
    model_load = time.perf_counter() - started
    chunks, vectors, base_info = real_base(args, embeddings)
    questions = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    questions = questions[: args.max_questions] if args.max_questions else questions
    log(f"{len(chunks)} real chunks; embedding {len(questions)} questions…")
    embeddings.embed_query("warm-up")
    load_before = load_average()
    query_vectors, embed_times = [], []
    for question in questions:
        vector, seconds = timed(embeddings.embed_query, question["question"])
        query_vectors.append(vector)
        embed_times.append(seconds)
    result = {
        "model_load_seconds": round(model_load, 2),
        "torch_threads": torch_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "cpu_count": os.cpu_count(),
        "real_chunks": len(chunks),
        "base": base_info,
        "questions": len(questions),
        "k": args.k,
        "noise": args.noise,
        "query_embedding": latency_stats(embed_times),
        "query_embedding_load_average": {"before": load_before, "after": load_average()},
        "rss_before_indexes_mb": round(current_rss_mb(), 1),
        "sizes": [],
    }
    for total in args.chunks:
        gc.collect()
        rss_before = current_rss_mb()
        log(f"building an index of {total} chunks…")
        many_chunks, many_vectors = replicate(chunks, vectors, total, args.noise, args.seed)
        version, build = build_index(many_chunks, many_vectors, embeddings)
        del many_chunks, many_vectors
        gc.collect()
        build["rss_growth_mb"] = round(current_rss_mb() - rss_before, 1)
        log(f"timing {len(questions)} questions at {total} chunks…")
        load_before = load_average()
        latency = measure(version, questions, query_vectors, embeddings, args.k, args.warmup)
        load = {"before": load_before, "after": load_average()}
        result["sizes"].append(
            {
                "chunks": len(version),
                "documents": len(version.rows_by_doc),
                **build,
                **latency,
                "load_average": load,
                **save_and_load(version, embeddings),
            }
        )
        del version
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["target_index_p50_ms"] = TARGET_P50_MS
    return result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def line(name: str, figures: dict) -> str:
    return (
        f"   {name:<22} p50 {figures['p50_ms']:7.2f} ms   p95 {figures['p95_ms']:7.2f} ms   "
        f"mean {figures['mean_ms']:7.2f} ms"
    )


def print_report(result: dict) -> None:
    base = result["base"]
    source = "cache" if base["from_cache"] else f"embedded in {base['embed_seconds']} s"
    print(
        f"Real passages: {result['real_chunks']} chunks from {base['faq_docs']} Python FAQ documents and "
        f"{base['pages']} pages of {base['package']} ({source}); replicas get gaussian noise "
        f"sigma={result['noise']}"
    )
    print(
        f"Questions: {result['questions']} (pyfaq), k={result['k']}; model load {result['model_load_seconds']} s; "
        f"torch/FAISS threads {result['torch_threads']}/{result['faiss_threads']} on {result['cpu_count']} CPUs; "
        f"RSS before building indexes {result['rss_before_indexes_mb']:.0f} MiB"
    )
    print()
    load = result["query_embedding_load_average"]
    print(
        line("query embedding", result["query_embedding"])
        + f"   (load average {load['before']} / {load['after']})"
    )
    for size in result["sizes"]:
        verdict = "OK" if size["index"]["p50_ms"] < result["target_index_p50_ms"] else "MISSED"
        print()
        print(f"{size['chunks']:,} chunks, {size['documents']:,} documents")
        print(
            f"   build {size['build_seconds']} s (add_chunks {size['add_chunks_seconds']} s, BM25 index "
            f"{size['keyword_index_seconds']} s), RSS +{size['rss_growth_mb']:.0f} MiB"
        )
        print(
            line("index (retrieve)", size["index"])
            + f"   target p50 < {result['target_index_p50_ms']:g} ms: "
            + verdict
        )
        for step, figures in size["index_steps"].items():
            print(line(f"  of which {step}", figures))
        print(line("end to end", size["end_to_end"]))
        print(
            f"   saved in {size['save_seconds']} s ({size['disk_mb']:.0f} MB on disk), "
            f"loaded back in {size['load_seconds']} s"
        )
        print(
            f"   recall@{result['k']} (gold document or a replica of it): {size['recall_at_k']}; machine load "
            f"average before/after timing: {size['load_average']['before']} / {size['load_average']['after']}"
        )
    print()
    print(f"Peak RSS: {result['peak_rss_mb']:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--chunks",
        default="10000,100000",
        type=lambda s: [int(n) for n in s.split(",")],
        help="comma-separated index sizes to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=100,
        help="Python-doc pages embedded for real, besides the FAQ (default: %(default)s)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.02,
        help="standard deviation of the noise added to each replica's vector components "
        "(default: %(default)s, cosine to the original ≈ 0.93)",
    )
    parser.add_argument("--k", type=int, default=5, help="hits per query (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed queries first (default: %(default)s)")
    parser.add_argument(
        "--max-questions", type=int, default=0, help="use only the first N questions (0 = all)"
    )
    parser.add_argument("--questions", default=str(PYFAQ / "questions.jsonl"), help="questions JSONL")
    parser.add_argument("--faq-docs", default=str(PYFAQ / "docs"), help="folder of FAQ Markdown documents")
    parser.add_argument(
        "--cache",
        default=str(DEFAULT_CACHE),
        help="folder for python3.11-doc and the embedded real passages (default: %(default)s)",
    )
    parser.add_argument("--refresh", action="store_true", help="re-embed the real passages even if cached")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads (default 0: torch's own choice, as the bot runs)",
    )
    parser.add_argument(
        "--faiss-threads",
        type=int,
        default=0,
        help="FAISS OpenMP threads (default 0: FAISS's own choice, as the bot runs)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
