"""Plain-text presentation shared by every surface: source ages and numbered source lists."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.models import Answer, Citation


def updated_ago(updated_at: str | None, now: datetime | None = None) -> str | None:
    """'updated today', 'updated 1 day ago', 'updated 12 days ago'; None when the age is unknown."""
    if not updated_at:
        return None
    try:
        moment = datetime.fromisoformat(updated_at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    days = max(0, ((now or datetime.now(UTC)) - moment).days)
    if days == 0:
        return "updated today"
    return f"updated {days} day{'s' if days != 1 else ''} ago"


def is_link(source: str) -> bool:
    """True when a source can be opened in a browser."""
    return source.startswith(("http://", "https://"))


def source_line(citation: Citation, now: datetime | None = None) -> str:
    """'[1] Title — https://… (updated 3 days ago)'."""
    age = updated_ago(citation.updated_at, now)
    suffix = f" ({age})" if age else ""
    return f"[{citation.n}] {citation.title} — {citation.source}{suffix}"


def plain_text(answer: Answer, now: datetime | None = None) -> str:
    """The answer followed by its numbered sources, for terminals and logs."""
    lines = [answer.text]
    if answer.citations:
        lines += ["", "Sources:" if not answer.refused else "Closest sources:"]
        lines += [source_line(c, now) for c in answer.citations]
    return "\n".join(lines)
