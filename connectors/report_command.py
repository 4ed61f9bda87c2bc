"""The `helpdesk report` command: the support report of a period as rich tables, JSON or a CSV of gaps."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

# Gaps, articles and syncs shown in the terminal; --json carries them all.
SHOWN_ROWS = 15


def report(
    since: Annotated[
        str, typer.Option(help="How far back to look: hours, days or weeks, e.g. 12h, 7d, 30d, 4w.")
    ] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", dir_okay=False, help="Write the coverage gaps to this CSV file."),
    ] = None,
) -> None:
    """Questions, answers, refusals, votes and answer times; coverage gaps; articles used; syncs.

    Coverage gaps are the refused and 👎 questions grouped by meaning, largest first, each with the
    articles that came closest.
    """
    from bot.report import build_report, gaps_csv, parse_period
    from bot.runtime import open_journal, open_knowledge_base
    from connectors.cli import _fail, _settings, out, run_and_close

    settings = _settings()
    if as_json and csv_file is not None:
        raise _fail("Choose one of --json and --csv", code=2)
    try:
        period = parse_period(since)
    except ValueError as error:
        raise _fail(str(error), code=2) from None
    knowledge_base = open_knowledge_base(settings)
    result = run_and_close(
        settings, build_report(open_journal(settings), knowledge_base, knowledge_base.embeddings, period)
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
        return
    if csv_file is not None:
        csv_file.write_text(gaps_csv(result.gaps), encoding="utf-8")
        out.print(f"Wrote {len(result.gaps)} coverage gaps to {csv_file}")
        return
    print_report(result.to_dict())


def print_report(report: dict) -> None:
    """The report as rich tables on standard output."""
    from connectors.cli import out

    period = report["period"]
    volume = report["volume"]
    out.print(f"[bold]Support report[/bold] {period['since'][:16]} → {period['until'][:16]} (UTC)")
    figures = Table(show_header=False, title="Volume")
    for label, key in [
        ("questions", "questions"),
        ("answered", "answered"),
        ("refused", "refused"),
        ("👍", "up_votes"),
        ("👎", "down_votes"),
        ("asked a human", "escalations"),
        ("median answer time (ms)", "median_answer_ms"),
        ("p95 answer time (ms)", "p95_answer_ms"),
    ]:
        value = volume[key]
        figures.add_row(label, "–" if value is None else str(value))
    out.print(figures)
    per_day = Table(title="Questions per day")
    for column in ("date", "questions", "answered", "refused"):
        per_day.add_column(column)
    for day in report["per_day"]:
        per_day.add_row(day["date"], str(day["questions"]), str(day["answered"]), str(day["refused"]))
    out.print(per_day)
    _print_gaps(report["gaps"])
    _print_articles(report["articles"])
    _print_syncs(report["syncs"])


def _print_gaps(gaps: list[dict]) -> None:
    from connectors.cli import out

    if not gaps:
        out.print("No coverage gaps: every question was answered and none got more 👎 than 👍.")
        return
    table = Table(title=f"Coverage gaps ({len(gaps)})", show_lines=True)
    for column in ("size", "examples", "closest articles", "first seen", "last seen"):
        table.add_column(column)
    for gap in gaps[:SHOWN_ROWS]:
        closest = "\n".join(f"{a['doc_id']} ({a['similarity']:.2f})" for a in gap["closest_articles"])
        table.add_row(
            str(gap["size"]),
            "\n".join(gap["examples"]),
            closest or "–",
            gap["first_seen"][:16],
            gap["last_seen"][:16],
        )
    out.print(table)


def _print_articles(articles: dict) -> None:
    from connectors.cli import out

    cited = Table(title="Most cited articles")
    cited.add_column("article")
    cited.add_column("citations")
    for article in articles["most_cited"]:
        cited.add_row(article["doc_id"], str(article["citations"]))
    out.print(cited)
    stale = articles["stale"]
    if stale:
        table = Table(title="Cited often, not updated for a long time")
        for column in ("article", "citations", "days since update"):
            table.add_column(column)
        for article in stale[:SHOWN_ROWS]:
            table.add_row(article["doc_id"], str(article["citations"]), str(article["days_since_update"]))
        out.print(table)
    never = articles["never_cited"]
    if never:
        listed = ", ".join(a["doc_id"] for a in never[:SHOWN_ROWS])
        more = f" and {len(never) - SHOWN_ROWS} more" if len(never) > SHOWN_ROWS else ""
        out.print(f"[bold]Never cited ({len(never)}):[/bold] {listed}{more}", highlight=False)


def _print_syncs(syncs: list[dict]) -> None:
    from connectors.cli import out

    if not syncs:
        out.print("No syncs in this period.")
        return
    table = Table(title="Syncs")
    for column in ("started", "added", "updated", "deleted", "skipped", "version"):
        table.add_column(column)
    for sync in syncs[-SHOWN_ROWS:]:
        table.add_row(
            sync["started_at"][:16],
            str(len(sync["added"])),
            str(len(sync["updated"])),
            str(len(sync["deleted"])),
            str(len(sync["skipped"])),
            sync["error"] or sync["version"] or "–",
        )
    out.print(table)
    for sync in syncs[-SHOWN_ROWS:]:
        for skipped in sync["skipped"]:
            out.print(f"  [yellow]skipped[/yellow] {skipped['where']}: {skipped['reason']}", highlight=False)
