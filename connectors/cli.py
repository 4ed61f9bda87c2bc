"""The `helpdesk` command line: sync the knowledge base, search it, evaluate retrieval."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Coroutine
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from bot.settings import Settings
from connectors import voice_commands as tone_commands
from connectors.report_command import report
from knowledge.base import KnowledgeBaseEmpty
from knowledge.integrity import IndexDamaged
from knowledge.sources.learnt import UnknownEntry
from knowledge.store import IndexStore, SyncInProgress
from knowledge.sync import SyncReport

T = TypeVar("T")

app = typer.Typer(
    help="A helpdesk bot that answers from your knowledge base and cites its sources.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as error:
        console.print(f"[red]Invalid settings:[/red] {error}")
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in (
        "sentence_transformers",
        "faiss",
        "httpx",
        "httpcore",
        "apscheduler",
        "bm25s",
        "trafilatura",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]Error:[/red] {message}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def _print_report(report: SyncReport) -> None:
    table = Table(title="Sync summary", show_header=False)
    for label, value in [
        ("added", len(report.added)),
        ("updated", len(report.updated)),
        ("deleted", len(report.deleted)),
        ("unchanged", report.unchanged),
        ("skipped", len(report.skipped)),
        ("passages embedded", report.chunks_embedded),
        ("documents in index", report.documents_total),
        ("index version", report.version),
        ("time", f"{report.seconds:.1f} s"),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    for skipped in report.skipped:
        console.print(f"  [yellow]skipped[/yellow] {skipped.where}: {skipped.reason}")


async def _sync_once(settings: Settings, sources: list[str], as_json: bool, kb=None) -> SyncReport:
    from bot.runtime import index_backend, open_knowledge_base, open_sources

    if kb is None:
        backend = index_backend(settings)
        await backend.check_writable()  # before loading any model
        kb = open_knowledge_base(settings, backend)
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=as_json) as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int | None) -> None:
            label = {"scan": "Reading sources", "embed": "Embedding passages", "write": "Writing index"}[
                stage
            ]
            if stage not in tasks:
                tasks[stage] = progress.add_task(label, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        return await kb.sync(
            open_sources(settings, sources), prune_unlisted=not sources, progress=on_progress
        )


@app.command()
def sync(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Folders, files, page URLs or sitemap.xml URLs. "
            "Default: HELPDESK_SOURCES (or the sample KB)."
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help="Keep running and sync on this cron schedule, e.g. '*/30 * * * *'.",
            envvar="HELPDESK_SYNC_CRON",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Index new and changed documents, drop deleted ones; unchanged documents cost nothing.

    Without SOURCE arguments the configured sources are the whole knowledge base, and documents of
    sources no longer configured are removed. With arguments only those sources are synced.
    """
    settings = _settings()
    specs = list(sources or [])
    try:
        if cron:  # a data directory not writable yet fails the run, and the next run tries again
            asyncio.run(_sync_forever(settings, specs, cron))
            return
        if settings.database_url is None:  # a database is checked as the sync starts
            IndexStore.in_data_dir(settings.data_dir).check_writable()  # before loading any model
        report = asyncio.run(_sync_once(settings, specs, as_json))
    except (SyncInProgress, ValueError, RuntimeError) as error:
        raise _fail(str(error)) from None
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_report(report)


def run_and_close(settings: Settings, work: Coroutine[object, object, T]) -> T:
    """Run a command's async work, then close its database connections (HELPDESK_DATABASE_URL) in the same loop."""
    from bot.runtime import close_database

    async def run() -> T:
        try:
            return await work
        finally:
            await close_database(settings)

    return asyncio.run(run())


async def _status_report(settings: Settings) -> dict:
    """The index's health and the answers learnt from people."""
    from bot.runtime import index_backend, open_learnt_answers
    from knowledge.versions import index_health

    if settings.database_url is None:
        report = await asyncio.to_thread(index_health, IndexStore.in_data_dir(settings.data_dir))
    else:
        try:
            report = await index_backend(settings).health()
        except RuntimeError as error:
            raise _fail(str(error)) from None
    learnt = open_learnt_answers(settings)
    report["learnt_answers"] = {
        "kept_in": learnt.where,
        "entries": [
            {key: getattr(entry, key) for key in ("id", "question", "answered_by", "platform", "saved_at")}
            for entry in await learnt.entries()
        ],
    }
    return report


async def _sync_forever(settings: Settings, specs: list[str], cron: str, kb=None) -> None:
    """Sync now and then on the schedule until SIGINT/SIGTERM; a failed run is logged, the next one still runs."""
    from bot.runtime import open_knowledge_base
    from knowledge.schedule import SyncSchedule

    kb = kb or open_knowledge_base(settings)

    async def run() -> None:
        _print_report(await _sync_once(settings, specs, False, kb))
        console.print(f"Next sync at {schedule.next_run():%Y-%m-%d %H:%M:%S %Z}")

    schedule = SyncSchedule(run, cron)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        schedule.start()
        console.print(f"Syncing on schedule '{cron}'; first run now. Press Ctrl+C to stop.")
        await schedule.run_once()
        await stop.wait()
    finally:
        schedule.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    console.print("Stopped.")


_STATES = {
    "ok": "healthy: checksums match",
    "unverified": "serving a version saved before checksums were recorded (the next sync that changes "
    "something records them)",
    "degraded": "degraded: the newest version is damaged, an older one is served; run `helpdesk sync`",
    "damaged": "no usable version: run `helpdesk sync` to rebuild the index from the sources",
    "empty": "empty: run `helpdesk sync`",
}


def _sync_line(entry: dict) -> str:
    when = str(entry.get("started_at", "?"))[:19].replace("T", " ")
    if entry.get("outcome") != "ok":
        return f"{when}  [red]failed[/red]  {entry.get('error', '')}"
    counts = ", ".join(f"{entry.get(key, 0)} {key}" for key in ("added", "updated", "deleted"))
    counts += f", {len(entry.get('skipped', []))} skipped"
    repaired = f", replaced damaged {', '.join(entry['damaged'])}" if entry.get("damaged") else ""
    return f"{when}  [green]ok[/green]  {counts} → {entry.get('version')}{repaired} ({entry.get('seconds', 0):.1f} s)"


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Show the index version served, its health, its documents and passages, and the last syncs.

    Exits with 1 when the index is empty, or when its newest version is damaged.
    """
    settings = _settings()
    report = run_and_close(settings, _status_report(settings))
    healthy = report["state"] in ("ok", "unverified")
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        raise typer.Exit(0 if healthy else 1)
    table = Table(title="Knowledge base", show_header=False)
    table.add_row("index", report["index"])
    table.add_row("health", _STATES[report["state"]])
    if report["served"] is not None:
        created = str(report.get("created_at") or "?")[:19].replace("T", " ")
        table.add_row("serving", f"{report['served']} (built {created} UTC)")
        table.add_row("documents", f"{report['documents']:,}")
        table.add_row("passages", f"{report['passages']:,}")
    out.print(table)
    for problem in report["damaged"].values():
        out.print(f"[red]{problem}[/red]", highlight=False, soft_wrap=True)
    out.print("Last syncs:" if report["last_syncs"] else "No sync recorded yet.")
    for entry in report["last_syncs"]:
        out.print(f"  {_sync_line(entry)}", highlight=False, soft_wrap=True)
    entries = report["learnt_answers"]["entries"]
    out.print(
        f"Answers learnt from people ({len(entries)}, in {report['learnt_answers']['kept_in']}):",
        highlight=False,
        soft_wrap=True,
    )
    for entry in entries:
        line = f"  {entry['id']}  {entry['saved_at'][:10]}  {entry['answered_by']}: {entry['question']}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if healthy else 1)


@app.command()
def forget(
    entry_id: Annotated[
        str, typer.Argument(help="The id of a learnt answer, as `helpdesk status` lists it.")
    ],
) -> None:
    """Remove an answer learnt from a person, and drop it from the index."""
    from bot.learning import AnswerLearning, NotIndexedYet
    from bot.runtime import open_journal, open_knowledge_base, open_learnt_answers

    settings = _settings()
    learnt = open_learnt_answers(settings)
    try:
        run_and_close(settings, learnt.require(entry_id))  # an unknown id fails here, before the model loads
        learning = AnswerLearning(open_journal(settings), open_knowledge_base(settings), learnt)
        run_and_close(settings, learning.forget(entry_id))
    except (UnknownEntry, NotIndexedYet, SyncInProgress) as error:
        raise _fail(str(error)) from None
    console.print(f"Removed the learnt answer {entry_id}; answers no longer cite it.")


def _hit_record(rank: int, hit) -> dict:
    chunk = hit.chunk
    return {
        "rank": rank,
        "score": round(hit.score, 4),
        "similarity": round(hit.dense, 4),
        "keyword": round(hit.keyword, 4),
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "heading": " > ".join(chunk.headings),
        "source": chunk.source,
        "updated_at": chunk.updated_at,
        "text": chunk.text,
    }


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("--k", min=1, max=50, help="How many documents to show.")] = 5,
    mode: Annotated[
        str | None, typer.Option(help="hybrid, dense or bm25 (default: HELPDESK_RETRIEVAL_MODE).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Show what retrieval finds for a query, with scores and sources."""
    from bot.runtime import open_knowledge_base

    settings = _settings()
    kb = open_knowledge_base(settings)
    try:
        retrieval = asyncio.run(
            kb.retrieve(
                query, k=k, mode=mode or settings.retrieval_mode, keyword_weight=settings.keyword_weight
            )
        )
    except (KnowledgeBaseEmpty, IndexDamaged, ValueError) as error:
        raise _fail(str(error)) from None
    records = [_hit_record(rank, hit) for rank, hit in enumerate(retrieval.hits, start=1)]
    if as_json:
        payload = {"query": query, "confidence": retrieval.confidence, "results": records}
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    if not records:
        out.print("No results.")
        return
    out.print(f"[dim]retrieval confidence {retrieval.confidence:.3f}[/dim]")
    for record in records:
        heading = f" › {record['heading']}" if record["heading"] else ""
        out.print(
            f"[bold]{record['rank']}. {record['title']}[/bold]{heading}  "
            f"[dim]score {record['score']:.3f} · similarity {record['similarity']:.3f}[/dim]"
        )
        out.print(f"   [cyan]{record['doc_id']}[/cyan]  {record['source']}", highlight=False)
        snippet = " ".join(record["text"].split())
        out.print(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}", highlight=False)


async def _ensure_synced(settings: Settings, kb) -> None:
    """On first use, or when no index version is usable, sync the configured sources (by default the sample)."""
    try:
        await kb.current()
        return
    except KnowledgeBaseEmpty:
        console.print("The knowledge base is empty; syncing the configured sources first…")
    except IndexDamaged as error:
        console.print(f"{error}; syncing the configured sources to rebuild it…", soft_wrap=True)
    _print_report(await _sync_once(settings, [], False, kb))


def _question_from(text: str, history):
    from bot.models import Question

    return Question(text=text, asker="terminal", history=tuple(history), channel="cli")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Answer one question from the knowledge base, with numbered sources."""
    from bot.formatting import plain_text
    from bot.runtime import build_bot

    settings = _settings()

    async def answer_once():
        bot = build_bot(settings)
        await bot.warm_up()
        return await bot.answer(_question_from(question, []))

    try:
        answer = asyncio.run(answer_once())
    except (KnowledgeBaseEmpty, IndexDamaged, ValueError) as error:
        raise _fail(str(error)) from None
    if as_json:
        sys.stdout.write(json.dumps(answer.to_dict()) + "\n")
    else:
        out.print(plain_text(answer), highlight=False, markup=False)


# What ends a terminal chat besides Ctrl+D (the empty string: an empty line).
QUIT_WORDS = {"", "exit", "quit", "bye"}


@app.command()
def chat() -> None:
    """Talk to the bot in the terminal; follow-up questions use the conversation so far."""
    settings = _settings()
    try:
        asyncio.run(_chat(settings))
    except (EOFError, KeyboardInterrupt):
        out.print()


async def _chat(settings: Settings) -> None:
    from bot.formatting import plain_text
    from bot.models import Turn
    from bot.runtime import build_bot, open_knowledge_base

    kb = open_knowledge_base(settings)
    await _ensure_synced(settings, kb)
    bot = build_bot(settings, kb)
    await bot.warm_up()
    history: list = []
    out.print("Ask a question about the knowledge base (an empty line, exit, quit, bye or Ctrl+D quits).")
    while True:
        text = (await asyncio.to_thread(out.input, "[bold]you>[/bold] ")).strip()
        if text.lower().strip("/ ") in QUIT_WORDS:
            return
        with console.status("Looking it up in the knowledge base…"):  # shown at once, gone with the answer
            answer = await bot.answer(_question_from(text, history))
        out.print(plain_text(answer), highlight=False, markup=False)
        out.print(f"[dim]{answer.timings_ms.get('total', 0):.0f} ms[/dim]")
        history += [Turn("user", text), Turn("assistant", answer.text)]
        history = history[-6:]


@app.command()
def serve() -> None:
    """Run the bot on every configured chat platform (Slack, Discord), with /healthz and scheduled syncs."""
    from connectors.server import NoPlatformConfigured
    from connectors.server import serve as run_server

    settings = _settings()
    try:
        asyncio.run(run_server(settings))  # SIGINT/SIGTERM shut it down cleanly
    except NoPlatformConfigured as error:
        raise _fail(str(error), code=2) from None
    except (RuntimeError, ValueError) as error:  # a connector failed, bad settings, port in use
        raise _fail(str(error)) from None


app.command()(tone_commands.tune)
app.command()(tone_commands.rewrite)
app.command()(report)


@app.command("eval")
def evaluate(
    questions: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="JSONL with id, question, gold_doc_ids, kind (and key_facts to score answers) per line.",
        ),
    ],
    mode: Annotated[
        str | None, typer.Option(help="hybrid, dense or bm25 (default: HELPDESK_RETRIEVAL_MODE).")
    ] = None,
    keyword_weight: Annotated[float | None, typer.Option(help="BM25 weight in hybrid mode.")] = None,
    answers: Annotated[bool, typer.Option(help="Also answer every question and score the answers.")] = True,
    voice: Annotated[
        bool, typer.Option(help="Answer in the brand voice, as configured (--no-voice: as composed).")
    ] = True,
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only questions of this kind (repeatable), e.g. --kind paraphrase."),
    ] = None,
    answers_out: Annotated[
        Path | None,
        typer.Option(help="Write one JSON line per answer: id, question, answer, refused, citations, ms."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Measure retrieval (hit@1, hit@5, MRR@10 per kind, abstention AUROC) and the answers given.

    Answers are scored by their questions' key facts: CORRECT (every key fact stated; for a question the
    knowledge base cannot answer, a refusal), MISSING (refused) or WRONG; score = (correct − wrong) / n.
    """
    from bot.runtime import open_knowledge_base
    from knowledge.evaluation import load_questions

    settings = _settings()
    try:
        items = [q for q in load_questions(questions) if not kinds or q["kind"] in kinds]
        if not items:
            raise ValueError(f"{questions} has no questions of kind {', '.join(kinds or [])}")
        kb = open_knowledge_base(settings)
        weight = settings.keyword_weight if keyword_weight is None else keyword_weight
        overrides = {
            "keyword_weight": weight,
            "retrieval_mode": mode or settings.retrieval_mode,
            "tone_enabled": settings.tone_enabled and voice,
        }
        result = asyncio.run(
            _evaluate(settings.model_copy(update=overrides), kb, items, answers, answers_out)
        )
    except (KnowledgeBaseEmpty, IndexDamaged, ValueError) as error:
        raise _fail(str(error)) from None
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    table = Table(title=f"Retrieval ({result['mode']}, {result['n_questions']} questions)")
    for column in ("kind", "n", "hit@1", "hit@5", "mrr@10"):
        table.add_column(column)
    for kind, row in [*result["by_kind"].items(), ("overall", result["overall"])]:
        table.add_row(kind, *(str(row.get(c, "–")) for c in ("n", "hit@1", "hit@5", "mrr@10")))
    out.print(table)
    out.print(f"abstention AUROC: {result['abstention_auroc']}")
    if "answers" in result:
        _print_verdicts(result["answers"])


def _print_verdicts(figures: dict) -> None:
    table = Table(title="Answers scored by key facts")
    for column in ("kind", "n", "correct", "missing", "wrong", "score"):
        table.add_column(column)
    rows = [(k, f["verdicts"]) for k, f in figures["by_kind"].items() if "verdicts" in f]
    for kind, row in [*rows, ("overall", figures["verdicts"])]:
        table.add_row(kind, *(str(row[c]) for c in ("n", "correct", "missing", "wrong", "score")))
    out.print(table)
    out.print(
        f"answer time p50 {figures['median_total_ms']} ms, p95 {figures['p95_total_ms']} ms", highlight=False
    )


async def _evaluate(
    settings: Settings, kb, items: list[dict], answers: bool, answers_out: Path | None = None
) -> dict:
    from bot.evaluation import answer_all, summarise_answers
    from bot.runtime import build_bot
    from knowledge.evaluation import evaluate_retrieval

    result = await evaluate_retrieval(
        kb, items, mode=settings.retrieval_mode, keyword_weight=settings.keyword_weight
    )
    if answers:
        bot = build_bot(settings, kb)
        await bot.warm_up()
        with _lines_writer(answers_out) as write:
            result["answers"] = summarise_answers(await answer_all(bot.chain, items, write))
    return result


@contextmanager
def _lines_writer(path: Path | None):
    """A function writing one JSON line per call to `path` (flushed, so a long run can be watched)."""
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8") as stream:

        def write(record: dict) -> None:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            stream.flush()

        yield write
