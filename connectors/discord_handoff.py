""" "Ask a human" on Discord: post the question and answer in the escalation channel, pinging one role."""

from __future__ import annotations

import logging

import discord

from bot.journal import JournalError, UnknownAnswer
from bot.service import HelpdeskBot
from bot.settings import Settings
from connectors.discord_render import inert

log = logging.getLogger(__name__)

# The bot's answer is quoted up to this many characters, so the post fits in one 2,000-character message.
QUOTED_ANSWER_CHARS = 1200
QUOTED_QUESTION_CHARS = 400
ASKED = "🙋 A person from the support team was asked and will get back to you."
NOT_ASKED = "Sorry, no one could be asked right now. Please try again in a moment."


def _quote(text: str, limit: int) -> str:
    shortened = text if len(text) <= limit else text[: limit - 1] + "…"
    return "\n".join(f"> {line}" for line in inert(shortened).splitlines() or [""])


def escalation_message(row: dict, requested_by: int, role: int | None, link: str | None) -> str:
    """The post in the escalation channel: who asked, the question, the bot's answer, a link back."""
    heading = f"{f'<@&{role}> ' if role else ''}<@{requested_by}> asked for a person"
    outcome = "The bot could not answer:" if row["refused"] else "The bot answered:"
    lines = [
        heading,
        "**Question**",
        _quote(row["question"], QUOTED_QUESTION_CHARS),
        f"**{outcome}**",
        _quote(row["answer"], QUOTED_ANSWER_CHARS),
    ]
    if link:
        lines.append(f"Conversation: {link}")
    return "\n".join(lines)


class DiscordHandoff:
    """Handles clicks on "Ask a human": one post in the escalation channel, recorded in the journal."""

    def __init__(self, bot: HelpdeskBot, settings: Settings):
        self.bot = bot
        self.channel_id = settings.discord_escalation_channel
        self.role_id = settings.discord_escalation_role

    @property
    def configured(self) -> bool:
        """True when an escalation channel is set (otherwise no answer offers the button)."""
        return self.channel_id is not None

    async def escalate(self, interaction: discord.Interaction, answer_id: str) -> None:
        """Post the hand-off (pinging only the configured role), then tell the clicker privately."""
        if self.channel_id is None:
            await self._reply(interaction, "Asking a person is not set up here.")
            return
        try:
            row = await self.bot.answer_on_record(answer_id)
        except (UnknownAnswer, JournalError) as error:
            log.warning("Discord: cannot hand off answer %s: %s", answer_id, error)
            await self._reply(interaction, NOT_ASKED)
            return
        link = interaction.message.jump_url if interaction.message is not None else None
        content = escalation_message(row, interaction.user.id, self.role_id, link)
        mentions = discord.AllowedMentions(
            everyone=False, users=False, roles=[discord.Object(self.role_id)] if self.role_id else False
        )
        channel = interaction.client.get_partial_messageable(self.channel_id)
        try:
            await channel.send(content, allowed_mentions=mentions)
        except discord.HTTPException as error:
            log.error(
                "Discord: could not post in the escalation channel %s (%s); can the bot send messages there?",
                self.channel_id,
                error,
            )
            await self._reply(interaction, NOT_ASKED)
            return
        await self.bot.escalated(answer_id, str(interaction.user.id), "discord", str(self.channel_id))
        await self._reply(interaction, ASKED)

    async def _reply(self, interaction: discord.Interaction, text: str) -> None:
        try:
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as error:
            log.warning("Discord: could not answer the click of interaction %s: %s", interaction.id, error)
