"""Answers learnt from people on Discord: "Save as an answer" for a trusted person who replied in a thread.

Discord shows a message to one person only as the response to that person's interaction, and a reply in a
thread is not one. So the offer is a short reply in the thread, pinging no one, whose button works only
for the reply's author (and only while they have the trusted role); the click is answered with an ephemeral
followup only they see, confirming the save.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import discord

from bot.learning import AnswerLearning, NotIndexedYet
from bot.service import HelpdeskBot
from connectors.discord_offers import OffersError, PendingOffers
from connectors.discord_render import inert
from knowledge.sources.learnt import LearntStore

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
# How long an offer waits for its click (then the person can reply again): a week, Discord's longest
# auto-archive of a thread.
SAVE_OFFERED_FOR = timedelta(days=7)
QUOTED_QUESTION_CHARS = 300
NOT_TRUSTED = "Only members with the role HELPDESK_DISCORD_TRUSTED_ROLE names can save answers."
NOT_YOURS = "Only the person who wrote this reply can save it as an answer."
EXPIRED = "This offer has expired: reply in the thread again to be offered to save your reply."
NOT_SAVED = "Sorry, the reply could not be saved right now. Please try again in a moment."


def offer_text(author_id: int, question: str) -> str:
    """The offer posted in the thread (the question made inert; the mention names the person, pinging no one)."""
    quoted = (
        question if len(question) <= QUOTED_QUESTION_CHARS else question[: QUOTED_QUESTION_CHARS - 1] + "…"
    )
    return (
        f"<@{author_id}>, you replied to a question the bot could not answer: *{inert(quoted)}*\n"
        "Save your reply as the answer? The bot then gives it to whoever asks this again, citing you. "
        "Only you can use this button."
    )


def saved_text(entry_id: str, title: str) -> str:
    """The ephemeral confirmation, saying how the answer is cited and how to remove it."""
    return (
        f"Saved as answer `{entry_id}`: the bot now answers this question from your reply, cited as "
        f"“{inert(title)}”. `helpdesk forget {entry_id}` or the admin page removes it."
    )


class SaveButton(discord.ui.DynamicItem[discord.ui.Button], template=r"helpdesk:learn:(?P<reply>\d+)"):
    """ "Save as an answer" under an offer; the custom id carries the id of the reply to save."""

    def __init__(self, reply_id: int):
        super().__init__(
            discord.ui.Button(
                label="Save as an answer",
                style=discord.ButtonStyle.primary,
                custom_id=f"helpdesk:learn:{reply_id}",
            )
        )
        self.reply_id = reply_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]) -> SaveButton:
        return cls(int(match["reply"]))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await interaction.client.helpdesk.first_to_handle(interaction)

    async def callback(self, interaction: discord.Interaction) -> None:
        learning = interaction.client.helpdesk.learning
        if learning is None:
            await _reply(interaction, "Saving answers is turned off here.")
            return
        await learning.save(interaction, self.reply_id)


async def _reply(interaction: discord.Interaction, text: str) -> None:
    try:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as error:
        log.warning("Discord: could not answer the click of interaction %s: %s", interaction.id, error)


class DiscordLearning:
    """Offers trusted people who reply in a refused or handed-off answer thread to save the reply."""

    def __init__(self, bot: HelpdeskBot, trusted_role: int, answers: LearntStore, offers: PendingOffers):
        self.learning = AnswerLearning.of(bot, answers)
        self.trusted_role = trusted_role
        self.offers = offers  # by reply message id

    def trusted(self, member: discord.abc.User) -> bool:
        """The member has the trusted role (HELPDESK_DISCORD_TRUSTED_ROLE)."""
        return isinstance(member, discord.Member) and member.get_role(self.trusted_role) is not None

    async def on_reply(self, message: discord.Message) -> bool:
        """A reply in an answer thread: True when it answers a question the bot could not (so the bot does
        not answer it); its author is offered to save it when trusted."""
        row = await self.learning.question_replied_to(
            "discord", str(message.channel.id), str(message.author.id)
        )
        if row is None:
            return False
        if not self.trusted(message.author) or not message.content.strip():
            return True
        offer = {
            "answer_id": row["id"],
            "question": row["question"],
            "author_id": message.author.id,
            "author_name": message.author.display_name,
            "text": message.clean_content,
            "link": message.jump_url,
        }
        await self.offers.keep(str(message.id), offer)
        view = discord.ui.View(timeout=None)
        view.add_item(SaveButton(message.id))
        await message.channel.send(
            offer_text(message.author.id, row["question"]),
            reference=message,
            mention_author=False,
            allowed_mentions=NO_MENTIONS,
            view=view,
        )
        return True

    async def save(self, interaction: discord.Interaction, reply_id: int) -> None:
        """A click on "Save as an answer": only by the reply's author, only if trusted; confirmed privately."""
        if not self.trusted(interaction.user):
            await _reply(interaction, NOT_TRUSTED)
            return
        try:
            offer = await self.offers.get(str(reply_id))
        except OffersError as error:
            log.error("Discord: cannot read the offer to save the reply %s: %s", reply_id, error)
            await _reply(interaction, NOT_SAVED)
            return
        if offer is None:
            await _reply(interaction, EXPIRED)
            return
        if offer["author_id"] != interaction.user.id:
            await _reply(interaction, NOT_YOURS)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        row = {"id": offer["answer_id"], "question": offer["question"]}
        author_id = str(offer["author_id"])
        try:
            entry = await self.learning.save(
                row, offer["text"], offer["author_name"], author_id, "discord", offer["link"]
            )
        except NotIndexedYet as error:
            reply = str(error)
        except (ValueError, OSError) as error:
            log.warning("Discord: could not save the reply %s as an answer: %s", reply_id, error)
            reply = NOT_SAVED
        else:
            await self._forget(reply_id)
            reply = saved_text(entry.id, entry.citation_title)
        await interaction.followup.send(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def _forget(self, reply_id: int) -> None:
        """Drop a saved reply's offer (a later click is told it expired)."""
        try:
            await self.offers.take(str(reply_id))
        except OffersError as error:
            log.warning(
                "Discord: the offer to save the reply %s is kept until it expires: %s", reply_id, error
            )
