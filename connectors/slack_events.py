"""Slack events as questions: which messages to answer, their plain text, and the thread's earlier turns."""

from __future__ import annotations

import re

from bot.models import Question, Turn
from connectors.slack_render import ANSWER_EVENT_TYPE, REPLY_EVENT_TYPE

# Message subtypes that are a person writing; edits, joins, deletions and bot posts are not questions.
USER_SUBTYPES = {None, "thread_broadcast", "file_share"}
MAX_HISTORY_TURNS = 6
_SLACK_TOKEN = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def is_person_message(event: dict) -> bool:
    """A message written by a person (not a bot, not an edit or a channel notice)."""
    return event.get("subtype") in USER_SUBTYPES and not event.get("bot_id") and bool(event.get("user"))


def is_direct_message(event: dict) -> bool:
    """A message in a one-to-one conversation with the bot."""
    return event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D")


def thread_root(event: dict) -> str:
    """The ts of the thread the bot replies in: the thread's root, or the message itself."""
    return event.get("thread_ts") or event["ts"]


def in_thread(event: dict) -> bool:
    """The message is a reply inside an existing thread."""
    return thread_root(event) != event["ts"]


def mentions(text: str, user_id: str | None) -> bool:
    """True when the text @mentions this user."""
    return bool(user_id) and (f"<@{user_id}>" in text or f"<@{user_id}|" in text)


def clean_text(text: str, bot_user_id: str | None) -> str:
    """Slack's message markup as plain text: the bot's own mention removed, links and names readable."""

    def plain(match: re.Match) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "" if target[1:] == bot_user_id else "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        return label or target

    plain_text = _SLACK_TOKEN.sub(plain, text)
    plain_text = plain_text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(plain_text.split())


def to_question(event: dict, bot_user_id: str | None, history: tuple[Turn, ...] = ()) -> Question:
    """The question a Slack message asks, keyed to its thread so follow-ups share a conversation."""
    channel = event.get("channel")
    return Question(
        text=clean_text(event.get("text", ""), bot_user_id),
        asker=event.get("user"),
        history=history,
        channel=channel,
        conversation_id=f"{channel}:{thread_root(event)}",
        platform="slack",
    )


def _ts_key(ts: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ts.split("."))


def is_answer(message: dict) -> bool:
    """A bot message carrying a finished answer (not a placeholder, its progress or an apology)."""
    return (message.get("metadata") or {}).get("event_type") == ANSWER_EVENT_TYPE


def replying_to(message: dict) -> str | None:
    """The ts of the message a bot reply (answer, placeholder, progress or apology) is marked as replying to."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") not in (ANSWER_EVENT_TYPE, REPLY_EVENT_TYPE):
        return None
    return (metadata.get("event_payload") or {}).get("question_ts")


def reply_to(messages: list[dict], question_ts: str, bot_user_id: str | None) -> dict | None:
    """The bot's reply to the message `question_ts` among a thread's messages (conversations.replies with
    their metadata): its answer if one was finished, else its earliest placeholder; None if it has none."""
    replies = sorted(
        (
            m
            for m in messages
            if replying_to(m) == question_ts and (bot_user_id is None or m.get("user") == bot_user_id)
        ),
        key=lambda m: _ts_key(m["ts"]),
    )
    return next((m for m in replies if is_answer(m)), replies[0] if replies else None)


def history_from_replies(
    messages: list[dict], bot_user_id: str | None, before_ts: str, limit: int = MAX_HISTORY_TURNS
) -> tuple[Turn, ...]:
    """Earlier turns of a thread (conversations.replies): people's messages and the bot's answers.

    The bot's placeholders and apologies and every other bot's messages are left out.
    """
    turns = []
    for message in sorted(messages, key=lambda m: _ts_key(m["ts"])):
        if _ts_key(message["ts"]) >= _ts_key(before_ts):
            break
        if bot_user_id and message.get("user") == bot_user_id:
            if is_answer(message):
                turns.append(Turn("assistant", clean_text(message.get("text", ""), bot_user_id)))
        elif is_person_message(message):
            text = clean_text(message.get("text", ""), bot_user_id)
            if text:
                turns.append(Turn("user", text))
    return tuple(turns[-limit:])
