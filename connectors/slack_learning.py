"""Answers learnt from people on Slack: a private "Save as an answer" offer to a trusted person who replied."""

from __future__ import annotations

import json
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.journal import JournalError, UnknownAnswer
from bot.learning import AnswerLearning, NotIndexedYet
from bot.service import HelpdeskBot
from connectors.slack_events import clean_text, thread_root
from connectors.slack_render import SlackMessage, escape
from knowledge.sources.learnt import LearntStore

log = logging.getLogger(__name__)

SAVE_ACTION = "save_learnt_answer"
# The question is quoted in the offer up to this many characters.
QUOTED_QUESTION_CHARS = 300
NOT_TRUSTED = "Only people HELPDESK_SLACK_TRUSTED_USERS names can save answers."
NOT_YOURS = "Only the person who wrote this reply can save it as an answer."
NOT_SAVED = "Sorry, the reply could not be saved right now. Please try again in a moment."


def offer_message(question: str, answer_id: str, reply_ts: str, root: str) -> SlackMessage:
    """The private offer: the question the reply answers (escaped) and a "Save as an answer" button."""
    quoted = (
        question if len(question) <= QUOTED_QUESTION_CHARS else question[: QUOTED_QUESTION_CHARS - 1] + "…"
    )
    text = (
        f"You replied to a question the bot could not answer: _{escape(quoted)}_\n"
        "Save your reply as the answer? The bot then gives it to whoever asks this again, citing you."
    )
    value = json.dumps({"answer": answer_id, "reply": reply_ts, "root": root})
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": SAVE_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Save as an answer"},
                    "value": value,
                }
            ],
        },
    ]
    return SlackMessage("Save your reply as an answer?", blocks)


def saved_message(entry_id: str, title: str) -> str:
    """The private confirmation, saying how the answer is cited and how to remove it."""
    return (
        f"Saved as answer `{entry_id}`: the bot now answers this question from your reply, cited as "
        f"“{escape(title)}”. `helpdesk forget {entry_id}` or the admin page removes it."
    )


class SlackLearning:
    """Offers trusted people who reply in a refused or handed-off thread to save their reply, and saves it."""

    def __init__(self, client: AsyncWebClient, bot: HelpdeskBot, trusted: list[str], answers: LearntStore):
        self.client = client
        self.bot = bot
        self.learning = AnswerLearning.of(bot, answers)
        self.trusted_users = {t for t in trusted if not t.startswith("S")}
        self.trusted_groups = [t for t in trusted if t.startswith("S")]

    async def trusted(self, user: str) -> bool:
        """The user is named in HELPDESK_SLACK_TRUSTED_USERS, or is in a user group named there."""
        if user in self.trusted_users:
            return True
        for group in self.trusted_groups:
            try:
                members = (await self.client.usergroups_users_list(usergroup=group)).get("users", [])
            except SlackApiError as error:
                log.warning(
                    "Slack: cannot read the members of user group %s (%s); does the app have usergroups:read?",
                    group,
                    error.response.get("error"),
                )
                continue
            if user in members:
                return True
        return False

    async def question_replied_to(self, event: dict) -> dict | None:
        """The question a person's thread reply answers (see AnswerLearning.question_replied_to)."""
        conversation = f"{event['channel']}:{thread_root(event)}"
        return await self.learning.question_replied_to("slack", conversation, event["user"])

    async def offer(self, event: dict, row: dict) -> None:
        """Offer the author of a reply, privately, to save it; nobody else sees the offer."""
        if not await self.trusted(event["user"]):
            return
        root = thread_root(event)
        message = offer_message(row["question"], row["id"], event["ts"], root)
        await self.client.chat_postEphemeral(
            channel=event["channel"],
            user=event["user"],
            thread_ts=root,
            text=message.text,
            blocks=message.blocks,
        )

    async def on_save(self, body: dict, value: str, channel: str, bot_user_id: str | None) -> None:
        """A click on "Save as an answer": only by the reply's author, and only if trusted."""
        user = body["user"]["id"]
        if not await self.trusted(user):
            await self._tell(channel, user, NOT_TRUSTED)
            return
        offer = json.loads(value)
        reply = await self._reply(channel, offer["root"], offer["reply"])
        if reply is None or reply.get("user") != user:
            await self._tell(channel, user, NOT_YOURS)
            return
        try:
            row = await self.bot.answer_on_record(offer["answer"])
            entry = await self.learning.save(
                row,
                "\n".join(clean_text(line, bot_user_id) for line in reply.get("text", "").splitlines()),
                await self._name(user),
                user,
                "slack",
                await self._permalink(channel, offer["reply"]),
            )
        except NotIndexedYet as error:
            await self._tell(channel, user, str(error))
            return
        except (UnknownAnswer, JournalError, ValueError, OSError) as error:
            log.warning("Slack: could not save the reply %s as an answer: %s", offer["reply"], error)
            await self._tell(channel, user, NOT_SAVED)
            return
        await self._tell(
            channel, user, saved_message(entry.id, entry.citation_title), thread_ts=offer["root"]
        )

    async def _reply(self, channel: str, root: str, ts: str) -> dict | None:
        response = await self.client.conversations_replies(
            channel=channel, ts=root, latest=ts, inclusive=True
        )
        return next((m for m in response.get("messages", []) if m.get("ts") == ts), None)

    async def _name(self, user: str) -> str:
        """The person's display name (their id when Slack does not say: users:read is missing)."""
        try:
            profile = (await self.client.users_info(user=user))["user"].get("profile", {})
        except SlackApiError as error:
            log.warning(
                "Slack: no name for %s (%s); is users:read granted?", user, error.response.get("error")
            )
            return user
        return profile.get("display_name") or profile.get("real_name") or user

    async def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            return (await self.client.chat_getPermalink(channel=channel, message_ts=ts)).get("permalink")
        except SlackApiError:
            return None

    async def _tell(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        await self.client.chat_postEphemeral(channel=channel, user=user, text=text, **extra)
