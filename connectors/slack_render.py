"""Answers as Slack messages: escaped mrkdwn sections within Slack's limits, linked sources, feedback buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.formatting import is_link, updated_ago
from bot.models import Answer, Citation
from bot.safety import neutralise_mentions

SECTION_LIMIT = 3000
# Slack allows 50 blocks and 40,000 characters; an answer longer than this many sections is cut.
MAX_ANSWER_SECTIONS = 8
FALLBACK_LIMIT = 3000
TITLE_LIMIT = 200
FEEDBACK_BLOCK = "feedback"
FEEDBACK_ACTION_PREFIX = "feedback_"
ESCALATION_BLOCK = "escalation"
ESCALATION_ACTION = "ask_a_human"
ANSWER_EVENT_TYPE = "helpdesk_answer"
REPLY_EVENT_TYPE = "helpdesk_reply"
ELLIPSIS = "…"


@dataclass(frozen=True)
class SlackMessage:
    """What chat.postMessage / chat.update receive: fallback text (notifications) and blocks."""

    text: str
    blocks: list[dict] = field(default_factory=list)


def escape(text: str) -> str:
    """Text from documents, users or models made inert: no pings, no forged links or formatting tokens."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return neutralise_mentions(escaped)


def _safe_cut(text: str, end: int) -> int:
    """Move a cut back so it never splits an escape like &amp;."""
    ampersand = text.rfind("&", max(0, end - 5), end)
    if ampersand != -1 and ";" not in text[ampersand:end]:
        return ampersand
    return end


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, line, sentence or word when possible."""
    pieces = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind(sep) + len(sep) for sep in ("\n\n", "\n", ". ", " "))
        if cut < limit // 2:
            cut = _safe_cut(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _cut_with_ellipsis(text: str, limit: int) -> str:
    return text[: _safe_cut(text, limit - 1)].rstrip() + ELLIPSIS


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else _cut_with_ellipsis(text, limit)


def _section(mrkdwn: str) -> dict:
    # verbatim: Slack must not auto-link names or URLs in text we did not write.
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn, "verbatim": True}}


def link(url: str, title: str) -> str:
    """A Slack link `<url|title>` whose parts cannot break out of the link syntax."""
    safe_url = escape(url).replace("|", "%7C")
    return f"<{safe_url}|{escape(_truncate(title, TITLE_LIMIT))}>"


def citation_line(citation: Citation, now: datetime | None = None) -> str:
    """'[1] <url|Title> · updated 3 days ago', or the title and path when the source is not a web page."""
    title = citation.title or citation.doc_id
    if is_link(citation.source):
        where = link(citation.source, title)
    else:
        path = escape(citation.source.replace("`", "'"))
        where = f"{escape(_truncate(title, TITLE_LIMIT))} — `{path}`" if path else escape(title)
    age = updated_ago(citation.updated_at, now)
    return f"[{citation.n}] {where}" + (f" · _{age}_" if age else "")


def feedback_buttons(answer_id: str) -> dict:
    """👍/👎 buttons whose value is the answer id."""

    def button(vote: str, emoji: str, label: str) -> dict:
        return {
            "type": "button",
            "action_id": FEEDBACK_ACTION_PREFIX + vote,
            "text": {"type": "plain_text", "text": f"{emoji} {label}", "emoji": True},
            "value": answer_id,
            "accessibility_label": f"{label}: rate this answer",
        }

    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [button("up", "👍", "Helpful"), button("down", "👎", "Not helpful")],
    }


def escalation_button(answer_id: str) -> dict:
    """The "Ask a human" button, in a block of its own so a vote does not remove it."""
    return {
        "type": "actions",
        "block_id": ESCALATION_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": ESCALATION_ACTION,
                "text": {"type": "plain_text", "text": "🙋 Ask a human", "emoji": True},
                "value": answer_id,
                "accessibility_label": "Ask a person of the support team to take over",
            }
        ],
    }


def render(answer: Answer, now: datetime | None = None, *, escalation: bool = False) -> SlackMessage:
    """The answer's text, its sources (closest sources for a refusal), feedback and "Ask a human" buttons."""
    body = split_text(escape(answer.text))
    if len(body) > MAX_ANSWER_SECTIONS:
        last = MAX_ANSWER_SECTIONS - 1
        body = [*body[:last], _cut_with_ellipsis(body[last], SECTION_LIMIT)]
    blocks = [_section(piece) for piece in body]
    if answer.citations:
        heading = "*Closest sources*" if answer.refused else "*Sources*"
        lines = "\n".join([heading, *(citation_line(c, now) for c in answer.citations)])
        blocks += [_section(piece) for piece in split_text(lines)]
    blocks.append(feedback_buttons(answer.id))
    if escalation:
        blocks.append(escalation_button(answer.id))
    return SlackMessage(_truncate(escape(answer.text), FALLBACK_LIMIT), blocks)


def answer_metadata(answer_id: str, question_ts: str | None = None) -> dict:
    """Message metadata marking a message as an answer (to the message `question_ts`), so thread history can
    tell answers apart and a replica taking a question over can tell it was answered."""
    payload = {"answer_id": answer_id}
    if question_ts is not None:
        payload["question_ts"] = question_ts
    return {"event_type": ANSWER_EVENT_TYPE, "event_payload": payload}


def reply_metadata(question_ts: str) -> dict:
    """Message metadata marking the bot's placeholder (its progress, or an apology) as the reply to the message
    `question_ts`, so a replica taking that question over writes the answer into it rather than beside it."""
    return {"event_type": REPLY_EVENT_TYPE, "event_payload": {"question_ts": question_ts}}


PLACEHOLDER = SlackMessage(
    "Looking that up…", [_section(":hourglass_flowing_sand: _Looking that up in the knowledge base…_")]
)

APOLOGY = SlackMessage(
    "Sorry, something went wrong while answering. Please try again in a moment.",
    [_section(":warning: Sorry, something went wrong while answering. Please try again in a moment.")],
)

USAGE_HINT = SlackMessage(
    "Ask me a question about the knowledge base.",
    [_section("Ask me a question about the knowledge base, e.g. _How do I reset my password?_")],
)


def render_progress(partial_text: str) -> SlackMessage:
    """The answer so far while it streams in."""
    shown = _truncate(escape(partial_text).strip(), SECTION_LIMIT - 2)
    return SlackMessage(
        _truncate(shown, FALLBACK_LIMIT), [_section(shown.removesuffix(ELLIPSIS) + " " + ELLIPSIS)]
    )


def acknowledge_feedback(blocks: list[dict], vote: str) -> list[dict]:
    """The message's blocks with the feedback buttons replaced by a thank-you."""
    emoji = "👍" if vote == "up" else "👎"
    thanks = {
        "type": "context",
        "block_id": FEEDBACK_BLOCK,
        "elements": [{"type": "mrkdwn", "text": f"{emoji} Thanks for the feedback"}],
    }
    return [thanks if block.get("block_id") == FEEDBACK_BLOCK else block for block in blocks]
