"""Ingest benchmark: full sync, unchanged re-sync and 1%-changed re-sync of the Python documentation."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from measure import load_average, peak_rss_mb, torch_threads
from pydocs import DEFAULT_CACHE, copy_pages, ensure_html, select_pages

from bot.runtime import make_chunker
from bot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.embeddings import PACKAGED_MODEL, load_embeddings
from knowledge.sources import SourceOptions, open_source
from knowledge.sync import SyncReport

DEFAULT_MAX_FILES = 190  # the first 190 pages, as the bench has always measured them
RESYNC_TARGET = 0.05
EDIT_MARKER = "helpdeskbenchedit"


class TimedChunker(Chunker):
    """The project's Chunker, adding up the time spent splitting documents."""

    def __init__(self, chunker: Chunker):
        super().__init__(chunker.chunk_size, chunker.chunk_overlap, chunker.tokenizer)
        self.seconds = 0.0

    def split(self, doc_key, document):
        started = time.perf_counter()
        try:
            return super().split(doc_key, document)
        finally:
            self.seconds += time.perf_counter() - started


class StageClock:
    """A sync progress callback that remembers when each stage was first and last reported."""

    def __init__(self):
        self.started = time.perf_counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.perf_counter()
        self.first.setdefault(stage, now)
        self.last[stage] = now

    def phases(self, ended: float) -> dict[str, float]:
        """Seconds per phase: loading the previous version, reading+extracting+chunking, embedding, writing."""
        scan = self.first.get("scan", ended)
        embed, write = self.first.get("embed"), self.first.get("write")
        phases = {"load_previous": scan - self.started}
        phases["read_extract_chunk"] = (embed or write or ended) - scan
        phases["embedding"] = (self.last["embed"] - embed) if embed else 0.0
        phases["write_index"] = (ended - write) if write else 0.0
        return {name: round(seconds, 3) for name, seconds in phases.items()}


async def timed_sync(kb: KnowledgeBase, source, chunker: TimedChunker) -> tuple[SyncReport, dict]:
    """One sync with its phase breakdown."""
    chunker.seconds = 0.0
    load_before = load_average()
    clock = StageClock()
    report = await kb.sync([source], progress=clock)
    ended = time.perf_counter()
    phases = clock.phases(ended)
    phases["of_which_chunking"] = round(chunker.seconds, 3)
    load = {"before": load_before, "after": load_average()}
    return report, {
        "seconds": round(ended - clock.started, 3),
        "phases": phases,
        "load_average": load,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def edit_page(path: Path, number: int) -> None:
    """Append a paragraph at the end of the page's main content (before its last </section>)."""
    html = path.read_text(encoding="utf-8")
    at = html.rfind("</section>")
    if at < 0:
        msg = f"{path} has no </section> to append to"
        raise RuntimeError(msg)
    paragraph = (
        f"<p>Benchmark note {number} ({EDIT_MARKER}{number}): this paragraph was appended to "
        "measure how quickly an incremental sync picks up a changed page.</p>\n"
    )
    path.write_text(html[:at] + paragraph + html[at:], encoding="utf-8")


def pick_changed(pages: list[Path], fraction: float) -> list[Path]:
    """A deterministic, evenly spread fraction of the pages (at least one)."""
    count = max(1, round(len(pages) * fraction))
    step = len(pages) / count
    return [pages[int(i * step + step / 2)] for i in range(count)]


async def run(args) -> dict:
    html, deb = ensure_html(Path(args.cache))
    pages = select_pages(html, args.max_files)
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as tmp:
        corpus, data_dir = Path(tmp) / "corpus", Path(tmp) / "data"
        copy_pages(pages, html, corpus)
        log(f"corpus: {len(pages)} pages from {deb} in {corpus}")

        started = time.perf_counter()
        embeddings = load_embeddings()
        model_load = time.perf_counter() - started
        chunker = TimedChunker(make_chunker(Settings()))
        kb = KnowledgeBase(data_dir, embeddings, chunker, PACKAGED_MODEL)
        source = open_source(str(corpus), SourceOptions())

        log("full ingest…")
        full, full_time = await timed_sync(kb, source, chunker)
        window = await over_model_window(kb, embeddings)
        log("re-sync, nothing changed…")
        same, same_time = await timed_sync(kb, source, chunker)

        corpus_pages = sorted(corpus.rglob("*.html"))
        changed = pick_changed(corpus_pages, args.change_fraction)
        for number, page in enumerate(changed):
            edit_page(page, number)
        log(f"re-sync, {len(changed)} pages changed…")
        edited, edited_time = await timed_sync(kb, source, chunker)
        checks = await check_changed(kb, source.name, corpus, changed, edited)

    return {
        "corpus": {
            "package": deb,
            "pages": len(pages),
            "max_files": args.max_files,
            "skipped": [{"where": s.where, "reason": s.reason} for s in full.skipped],
        },
        "model_load_seconds": round(model_load, 3),
        "torch_threads": torch_threads(),
        "cpu_count": os.cpu_count(),
        "full": {
            **full_time,
            "documents": full.documents_total,
            "chunks_embedded": full.chunks_embedded,
            "chunks_total": full.chunks_total,
            "chunks_per_second": rate(full.chunks_embedded, full_time["seconds"]),
            "embedding_chunks_per_second": rate(full.chunks_embedded, full_time["phases"]["embedding"]),
            **window,
        },
        "resync_unchanged": {
            **same_time,
            "chunks_embedded": same.chunks_embedded,
            "new_version": same.changed,
            "fraction_of_full": round(same_time["seconds"] / full_time["seconds"], 4),
            "target_fraction": RESYNC_TARGET,
            "ok": same.chunks_embedded == 0
            and not same.changed
            and same_time["seconds"] / full_time["seconds"] < RESYNC_TARGET,
        },
        "resync_changed": {
            **edited_time,
            "pages_changed": len(changed),
            "added": len(edited.added),
            "updated": len(edited.updated),
            "deleted": len(edited.deleted),
            "chunks_embedded": edited.chunks_embedded,
            "fraction_of_full": round(edited_time["seconds"] / full_time["seconds"], 4),
            **checks,
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


async def over_model_window(kb: KnowledgeBase, embeddings) -> dict:
    """How many indexed chunks are longer than the model's input window (their tail is never embedded)."""
    model = getattr(embeddings, "_client", None)
    if model is None or not getattr(model, "max_seq_length", None):
        return {}
    version = await kb.current()
    texts = [chunk.embedding_text() for chunk in version.chunks]
    lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
    over = sum(length > model.max_seq_length for length in lengths)
    return {
        "model_window_tokens": model.max_seq_length,
        "chunks_over_window": over,
        "chunks_over_window_share": round(over / len(lengths), 4),
        "median_chunk_tokens": sorted(lengths)[len(lengths) // 2],
    }


async def check_changed(
    kb: KnowledgeBase, source_name: str, corpus: Path, changed: list[Path], report: SyncReport
) -> dict:
    """Check that exactly the changed pages were re-embedded, with their new text, and nothing else."""
    expected = {f"{source_name}|{page.relative_to(corpus).with_suffix('').as_posix()}" for page in changed}
    version = await kb.current()
    changed_chunks = [chunk for chunk in version.chunks if chunk.doc_key in expected and not chunk.derived]
    with_edit = {chunk.doc_key for chunk in changed_chunks if EDIT_MARKER in chunk.text}
    return {
        "changed_docs_chunks": len(changed_chunks),
        "updated_is_changed_pages": set(report.updated) == expected
        and not report.added
        and not report.deleted,
        "embedded_equals_changed_docs_chunks": report.chunks_embedded == len(changed_chunks),
        "edit_found_in_index": with_edit == expected,
    }


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_report(result: dict) -> None:
    full, same, edited = result["full"], result["resync_unchanged"], result["resync_changed"]
    corpus = result["corpus"]
    print(
        f"Corpus: {corpus['pages']} HTML pages of {corpus['package']} "
        f"({len(corpus['skipped'])} skipped); model load {result['model_load_seconds']:.1f} s; "
        f"torch threads {result['torch_threads']} on {result['cpu_count']} CPUs"
    )
    print()
    print("a. Full ingest")
    print(
        f"   {full['seconds']:.1f} s, {full['documents']} documents, {full['chunks_embedded']} chunks embedded, "
        f"{full['chunks_per_second']:.1f} chunks/s overall"
    )
    print_phases(full)
    print(f"   embedding alone: {full['embedding_chunks_per_second']:.1f} chunks/s")
    if "chunks_over_window" in full:
        print(
            f"   {full['chunks_over_window']} chunks ({full['chunks_over_window_share']:.1%}) are longer than the "
            f"model's {full['model_window_tokens']}-token window and get truncated (median chunk: "
            f"{full['median_chunk_tokens']} tokens)"
        )
    print()
    verdict = "OK" if same["ok"] else "MISSED"
    print("b. Re-sync, nothing changed")
    print(
        f"   {same['seconds']:.2f} s, {same['chunks_embedded']} chunks embedded, new version: {same['new_version']}, "
        f"{same['fraction_of_full']:.2%} of the full ingest (target < {same['target_fraction']:.0%}: {verdict})"
    )
    print_phases(same)
    print()
    print(f"c. Re-sync, {edited['pages_changed']} pages changed")
    print(
        f"   {edited['seconds']:.2f} s ({edited['fraction_of_full']:.2%} of full), updated {edited['updated']}, "
        f"added {edited['added']}, deleted {edited['deleted']}, {edited['chunks_embedded']} chunks embedded"
    )
    print_phases(edited)
    print(
        f"   updated == changed pages: {edited['updated_is_changed_pages']}; chunks embedded == changed docs' "
        f"chunks ({edited['changed_docs_chunks']}): {edited['embedded_equals_changed_docs_chunks']}; "
        f"edit text in index: {edited['edit_found_in_index']}"
    )
    print()
    print(f"d. Peak RSS: {result['peak_rss_mb']:.0f} MiB")


def print_phases(step: dict) -> None:
    phases = step["phases"]
    print(
        "   phases: "
        + ", ".join(f"{name.replace('_', ' ')} {seconds:.2f} s" for name, seconds in phases.items())
    )
    load = step["load_average"]
    print(
        f"   peak RSS so far {step['peak_rss_mb']:.0f} MiB; "
        f"machine load average before/after: {load['before']} / {load['after']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--cache",
        default=str(DEFAULT_CACHE),
        help="folder for the downloaded and unpacked python3.11-doc package (default: %(default)s)",
    )
    parser.add_argument(
        "--max-files",
        type=int,
        default=DEFAULT_MAX_FILES,
        help="HTML pages in the corpus, spread evenly over the sections (default: %(default)s, "
        "about 5,500 chunks)",
    )
    parser.add_argument(
        "--change-fraction",
        type=float,
        default=0.01,
        help="share of pages edited before the third sync (default: %(default)s)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads (default 0: torch's own choice, as the bot runs)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
