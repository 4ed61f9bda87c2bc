""" "Ask a human" on Slack: post the question and answer in the escalation channel, pinging the responders."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.journal import JournalError, UnknownAnswer
from bot.service import HelpdeskBot
from connectors.slack_render import (
    ESCALATION_BLOCK,
    SlackMessage,
    answer_metadata,
    escape,
    link,
    split_text,
)

log = logging.getLogger(__name__)

# The bot's answer is quoted in the escalation up to this many characters; the link leads to the rest.
QUOTED_ANSWER_CHARS = 1500
ASKED = "🙋 A person from the support team was asked and will reply in this thread."
NOT_ASKED = "Sorry, no one could be asked right now. Please try again in a moment."


def _quote(text: str) -> str:
    shortened = text if len(text) <= QUOTED_ANSWER_CHARS else text[: QUOTED_ANSWER_CHARS - 1] + "…"
    return "\n".join(f"> {line}" for line in escape(shortened).splitlines() or [""])


def escalation_message(
    row: dict, requested_by: str, mention: str | None, permalink: str | None
) -> SlackMessage:
    """The post in the escalation channel: who asked, the question, the bot's answer, a link to the thread.

    The configured mention (a user group or person) is the only ping; question and answer are escaped.
    """
    heading = f"{mention + ' ' if mention else ''}<@{requested_by}> asked for a person"
    outcome = "The bot could not answer:" if row["refused"] else "The bot answered:"
    lines = [heading, "*Question*", _quote(row["question"]), f"*{outcome}*", _quote(row["answer"])]
    if permalink:
        lines.append(link(permalink, "Open the conversation"))
    text = "\n".join(lines)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece, "verbatim": True}}
        for piece in split_text(text)
    ]
    return SlackMessage(text[:3000], blocks)


def acknowledge_escalation(blocks: list[dict]) -> list[dict]:
    """The answer's blocks with the "Ask a human" button replaced by a note that a person was asked."""
    note = {
        "type": "context",
        "block_id": ESCALATION_BLOCK,
        "elements": [{"type": "mrkdwn", "text": ASKED}],
    }
    return [note if block.get("block_id") == ESCALATION_BLOCK else block for block in blocks]


class SlackHandoff:
    """Handles clicks on "Ask a human": one post in the escalation channel, recorded in the journal."""

    def __init__(self, client: AsyncWebClient, bot: HelpdeskBot, channel: str, mention: str | None):
        self.client = client
        self.bot = bot
        self.channel = channel
        self.mention = mention

    async def on_click(self, body: dict, answer_id: str, channel: str, message: dict) -> None:
        """Post the hand-off, then show under the answer that a person was asked (or say it failed)."""
        requested_by = body["user"]["id"]
        try:
            row = await self.bot.answer_on_record(answer_id)
        except (UnknownAnswer, JournalError) as error:
            log.warning("Slack: cannot hand off answer %s: %s", answer_id, error)
            await self._tell(channel, requested_by, NOT_ASKED)
            return
        message_ts = message.get("ts") or body["container"]["message_ts"]
        try:
            permalink = (await self.client.chat_getPermalink(channel=channel, message_ts=message_ts)).get(
                "permalink"
            )
        except SlackApiError as error:
            log.warning("Slack: no link to the conversation of answer %s: %s", answer_id, error)
            permalink = None
        post = escalation_message(row, requested_by, self.mention, permalink)
        try:
            await self.client.chat_postMessage(
                channel=self.channel, text=post.text, blocks=post.blocks, unfurl_links=False
            )
        except SlackApiError as error:
            log.error(
                "Slack: could not post in the escalation channel %s (%s); is the bot a member of it?",
                self.channel,
                error.response.get("error"),
            )
            await self._tell(channel, requested_by, NOT_ASKED)
            return
        await self.bot.escalated(answer_id, requested_by, "slack", self.channel)
        await self.client.chat_update(
            channel=channel,
            ts=message_ts,
            text=message.get("text", ""),
            blocks=acknowledge_escalation(message.get("blocks", [])),
            metadata=answer_metadata(answer_id),
        )

    async def _tell(self, channel: str, user: str, text: str) -> None:
        await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
