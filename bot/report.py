"""The support report: volume, votes, answer times, coverage gaps, article use and syncs over a period."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from langchain_core.embeddings import Embeddings

from bot.gaps import Gap, group_by_meaning
from bot.journal import Journal
from knowledge.base import KnowledgeBase, KnowledgeBaseEmpty

# Articles listed as most cited.
MOST_CITED = 10
# An article cited at least this often in the period but not updated for STALE_AFTER_DAYS is stale: it
# carries many answers and may no longer be right. Half a year, as help centers commonly review articles.
STALE_MIN_CITATIONS = 3
STALE_AFTER_DAYS = 180
CLOSEST_ARTICLES = 3
_PERIOD = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def parse_period(text: str) -> timedelta:
    """'7d', '30d', '12h' or '2w' as a duration."""
    match = _PERIOD.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        msg = f"Cannot read the period {text!r}: use a number of hours, days or weeks such as 12h, 7d or 4w"
        raise ValueError(msg)
    return timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2)])


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


@dataclass
class Report:
    """Everything `helpdesk report` and the admin page show; `to_dict` is the documented JSON shape."""

    since: datetime
    until: datetime
    volume: dict = field(default_factory=dict)
    per_day: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    articles: dict = field(default_factory=dict)
    escalations: list[dict] = field(default_factory=list)
    syncs: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON object of `helpdesk report --json` (README: "The report")."""
        return {
            "period": {
                "since": self.since.isoformat(timespec="seconds"),
                "until": self.until.isoformat(timespec="seconds"),
            },
            "volume": self.volume,
            "per_day": self.per_day,
            "gaps": self.gaps,
            "articles": self.articles,
            "escalations": self.escalations,
            "syncs": self.syncs,
        }


async def build_report(
    journal: Journal,
    knowledge_base: KnowledgeBase | None,
    embeddings: Embeddings,
    period: timedelta,
    now: datetime | None = None,
    *,
    with_gaps: bool = True,
) -> Report:
    """The report of the period ending now, from the journal, the served index and the sync log.

    `with_gaps=False` leaves out the coverage gaps (the one part that embeds questions).
    """
    until = now or datetime.now(UTC)
    since = until - period
    activity = await journal.activity_since(since.timestamp())
    answers = activity["answers"]
    report = Report(since=since, until=until)
    report.volume = _volume(answers, len(activity["escalations"]))
    report.per_day = _per_day(answers, since, until)
    documents = await _served_documents(knowledge_base)
    if with_gaps:
        report.gaps = [await _gap_record(g, knowledge_base) for g in await _gaps(answers, embeddings)]
    report.articles = _articles(answers, documents, until)
    report.escalations = [
        {
            "requested_at": _iso(e["requested_at"]),
            "answer_id": e["answer_id"],
            "question": e["question"],
            "platform": e["platform"],
            "requested_by": e["requested_by"],
        }
        for e in activity["escalations"]
    ]
    if knowledge_base is not None:
        entries = await knowledge_base.sync_log.entries(since)
        report.syncs = [_sync_record(entry) for entry in entries]
    return report


def _volume(answers: list[dict], escalations: int) -> dict:
    times = [a["total_ms"] for a in answers if a["total_ms"] is not None]
    refused = sum(1 for a in answers if a["refused"])
    return {
        "questions": len(answers),
        "answered": len(answers) - refused,
        "refused": refused,
        "up_votes": sum(a["up_votes"] for a in answers),
        "down_votes": sum(a["down_votes"] for a in answers),
        "escalations": escalations,
        "median_answer_ms": round(float(np.percentile(times, 50)), 1) if times else None,
        "p95_answer_ms": round(float(np.percentile(times, 95)), 1) if times else None,
    }


def _per_day(answers: list[dict], since: datetime, until: datetime) -> list[dict]:
    """Questions, answers and refusals of every day of the period (UTC), days without any included."""
    days: dict[str, dict] = {}
    day = since.date()
    while day <= until.date():
        days[day.isoformat()] = {"date": day.isoformat(), "questions": 0, "answered": 0, "refused": 0}
        day += timedelta(days=1)
    for answer in answers:
        counts = days.setdefault(
            _day(answer["asked_at"]),
            {"date": _day(answer["asked_at"]), "questions": 0, "answered": 0, "refused": 0},
        )
        counts["questions"] += 1
        counts["refused" if answer["refused"] else "answered"] += 1
    return sorted(days.values(), key=lambda counts: counts["date"])


async def _gaps(answers: list[dict], embeddings: Embeddings) -> list[Gap]:
    missed = [a for a in answers if a["refused"] or a["down_votes"] > a["up_votes"]]
    return await group_by_meaning(missed, embeddings)


async def _gap_record(gap: Gap, knowledge_base: KnowledgeBase | None) -> dict:
    asked = [q["asked_at"] for q in gap.questions]
    return {
        "size": len(gap.questions),
        "refused": sum(1 for q in gap.questions if q["refused"]),
        "down_voted": sum(1 for q in gap.questions if q["down_votes"] > q["up_votes"]),
        "examples": gap.examples,
        "questions": [
            {
                "answer_id": q["id"],
                "question": q["question"],
                "asked_at": _iso(q["asked_at"]),
                "refused": bool(q["refused"]),
                "answer": q["answer"],
            }
            for q in sorted(gap.questions, key=lambda q: -q["asked_at"])
        ],
        "closest_articles": await _closest_articles(gap, knowledge_base),
        "first_seen": _iso(min(asked)),
        "last_seen": _iso(max(asked)),
    }


async def _closest_articles(gap: Gap, knowledge_base: KnowledgeBase | None) -> list[dict]:
    """The articles nearest the gap's central question, with their cosine similarity to it."""
    if knowledge_base is None:
        return []
    try:
        hits = await knowledge_base.search(gap.central_question, k=CLOSEST_ARTICLES, mode="dense")
    except KnowledgeBaseEmpty:
        return []
    return [
        {
            "doc_id": hit.chunk.doc_id,
            "title": hit.chunk.title,
            "source": hit.chunk.source,
            "similarity": round(hit.dense, 3),
        }
        for hit in hits
    ]


async def _served_documents(knowledge_base: KnowledgeBase | None) -> list[dict]:
    """The documents of the served index version (doc_id, title, source, updated_at)."""
    if knowledge_base is None:
        return []
    try:
        version = await knowledge_base.current()
    except KnowledgeBaseEmpty:
        return []
    return list(version.manifest.get("documents", {}).values())


def _articles(answers: list[dict], documents: list[dict], until: datetime) -> dict:
    cited = Counter(
        citation["doc_id"]
        for answer in answers
        if not answer["refused"]
        for citation in {c["doc_id"]: c for c in answer["citations"]}.values()
    )
    known = {document["doc_id"]: document for document in documents}
    titles = {c["doc_id"]: c["title"] for a in answers for c in a["citations"]}

    def article(doc_id: str) -> dict:
        document = known.get(doc_id, {})
        return {
            "doc_id": doc_id,
            "title": document.get("title") or titles.get(doc_id, doc_id),
            "source": document.get("source"),
            "updated_at": document.get("updated_at"),
        }

    stale = []
    for doc_id, count in cited.most_common():
        updated = _parse_time(known.get(doc_id, {}).get("updated_at"))
        if count >= STALE_MIN_CITATIONS and updated and (until - updated).days >= STALE_AFTER_DAYS:
            stale.append({**article(doc_id), "citations": count, "days_since_update": (until - updated).days})
    return {
        "most_cited": [{**article(d), "citations": n} for d, n in cited.most_common(MOST_CITED)],
        "never_cited": sorted(
            (article(doc_id) for doc_id in known if doc_id not in cited), key=lambda a: a["doc_id"]
        ),
        "stale": stale,
    }


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sync_record(entry: dict) -> dict:
    return {
        "started_at": entry.get("started_at"),
        "seconds": entry.get("seconds"),
        "version": entry.get("version"),
        "added": entry.get("added_documents", []),
        "updated": entry.get("updated_documents", []),
        "deleted": entry.get("deleted_documents", []),
        "unchanged": entry.get("unchanged"),
        "skipped": entry.get("skipped", []),
        "error": entry.get("error"),
    }


GAP_CSV_COLUMNS = (
    "size",
    "refused",
    "down_voted",
    "first_seen",
    "last_seen",
    "example_1",
    "example_2",
    "example_3",
    "closest_article",
    "closest_similarity",
)


def gaps_csv(gaps: list[dict]) -> str:
    """The coverage gaps as CSV, one row per gap, largest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(GAP_CSV_COLUMNS)
    for gap in gaps:
        examples = [*gap["examples"], "", "", ""][:3]
        closest = gap["closest_articles"][0] if gap["closest_articles"] else {}
        writer.writerow(
            [
                gap["size"],
                gap["refused"],
                gap["down_voted"],
                gap["first_seen"],
                gap["last_seen"],
                *examples,
                closest.get("doc_id", ""),
                closest.get("similarity", ""),
            ]
        )
    return buffer.getvalue()
