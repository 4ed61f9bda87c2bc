"""The Discord connector: the /ask slash command, feedback and "Post publicly" buttons, answer threads."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

import discord
from discord import app_commands

from bot.journal import JournalError, UnknownAnswer
from bot.models import Answer, Question
from bot.runtime import open_learnt_answers
from bot.service import HelpdeskBot
from bot.settings import Settings
from connectors.dedupe import open_ledger
from connectors.discord_delivery import Delivery
from connectors.discord_endpoints import point_discord_at
from connectors.discord_gateway import drop_malformed_events
from connectors.discord_handoff import DiscordHandoff
from connectors.discord_learning import SAVE_OFFERED_FOR, DiscordLearning, SaveButton
from connectors.discord_offers import OffersError, open_offers
from connectors.discord_render import render
from connectors.pending_events import (
    GIVEN_UP,
    SWEEP_INTERVAL_S,
    PendingEvent,
    PendingEventSweeper,
    leased,
    open_pending_events,
)
from connectors.thread_memory import ThreadMemoryError, open_thread_memory

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
APOLOGY = "Sorry, something went wrong while answering your question. Please try again in a moment."
VOTE_NOT_RECORDED = "Sorry, your vote could not be recorded right now. Please try again later."
UNKNOWN_ANSWER = "This answer is no longer on record, so the vote was not counted."
CONNECT_TIMEOUT_S = 60.0
# Discord error codes meaning the interaction's token can no longer be used.
EXPIRED_INTERACTION_CODES = {10062, 10015, 50027}
# How long a private answer can be posted publicly: Discord drops ephemeral messages when the app reloads,
# so a click comes within hours; a day is plenty.
PUBLISHABLE_FOR = timedelta(days=1)
NOT_PUBLISHED = "Sorry, the answer could not be posted right now. Please try again in a moment."
# How long the replica answering /ask holds it unless it renews the lease (every third of it): far longer than
# a renewal takes on a loaded database; a question whose replica died is taken over once it lapsed.
ANSWER_LEASE_S = 30.0
# A deferred reply left by a replica that died is finished by another only this long after the deferral:
# Discord takes edits with an interaction's token for 15 minutes, and a takeover needs a minute at most.
ANSWERABLE_FOR_S = 14 * 60.0
# How long stop() lets answers in progress finish; the others are taken over by another replica.
STOP_GRACE_S = 10.0

SendPart = Callable[..., Awaitable[discord.Message | None]]


def from_a_person(interaction: discord.Interaction) -> bool:
    """False for interactions of other bots: answering them could loop two bots forever."""
    if interaction.user.bot:
        log.info("Discord: ignored interaction %s from the bot %s", interaction.id, interaction.user.id)
        return False
    return True


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"helpdesk:vote:(?P<vote>up|down):(?P<id>\w+)"
):
    """👍 / 👎 under an answer; the custom id carries the answer id, so votes count even after a restart."""

    def __init__(self, answer_id: str, vote: str):
        emoji, style = (
            ("👍", discord.ButtonStyle.success) if vote == "up" else ("👎", discord.ButtonStyle.secondary)
        )
        super().__init__(
            discord.ui.Button(emoji=emoji, style=style, custom_id=f"helpdesk:vote:{vote}:{answer_id}")
        )
        self.answer_id = answer_id
        self.vote = vote

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]) -> VoteButton:
        return cls(match["id"], match["vote"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return from_a_person(interaction) and await interaction.client.helpdesk.first_to_handle(interaction)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.helpdesk.record_vote(interaction, self.answer_id, self.vote)


class PublishButton(discord.ui.DynamicItem[discord.ui.Button], template=r"helpdesk:publish:(?P<id>\w+)"):
    """The "Post publicly" button under a private answer: reposts the same answer to the channel."""

    def __init__(self, answer_id: str):
        button = discord.ui.Button(
            label="Post publicly",
            style=discord.ButtonStyle.primary,
            custom_id=f"helpdesk:publish:{answer_id}",
        )
        super().__init__(button)
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]) -> PublishButton:
        return cls(match["id"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return from_a_person(interaction) and await interaction.client.helpdesk.first_to_handle(interaction)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.helpdesk.publish(interaction, self.answer_id)


class EscalateButton(discord.ui.DynamicItem[discord.ui.Button], template=r"helpdesk:escalate:(?P<id>\w+)"):
    """ "Ask a human" under an answer: posts it in the escalation channel, pinging the responders' role."""

    def __init__(self, answer_id: str):
        button = discord.ui.Button(
            label="Ask a human",
            emoji="🙋",
            style=discord.ButtonStyle.secondary,
            custom_id=f"helpdesk:escalate:{answer_id}",
        )
        super().__init__(button)
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match[str]) -> EscalateButton:
        return cls(match["id"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return from_a_person(interaction) and await interaction.client.helpdesk.first_to_handle(interaction)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.helpdesk.handoff.escalate(interaction, self.answer_id)


def answer_view(answer_id: str, *, publishable: bool, escalation: bool = False) -> discord.ui.View:
    """The buttons under the last message of an answer."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    if escalation:
        view.add_item(EscalateButton(answer_id))
    if publishable:
        view.add_item(PublishButton(answer_id))
    return view


def _expired(error: Exception) -> bool:
    return isinstance(error, discord.HTTPException) and error.code in EXPIRED_INTERACTION_CODES


def _log_reply_failure(interaction_id: int, error: discord.HTTPException, what: str) -> None:
    """Log a reply to an interaction that Discord refused: expired (expected now and then) or anything else."""
    if _expired(error):
        log.warning("Discord interaction %s expired before %s was sent", interaction_id, what)
    else:
        log.error("Could not send %s of Discord interaction %s", what, interaction_id, exc_info=error)


@dataclass(frozen=True)
class DeferredAsk:
    """An /ask whose reply is deferred ("thinking…"): what any replica needs to answer it in that reply."""

    interaction_id: int
    application_id: int
    token: str  # valid 15 minutes; kept in the pending record only, and never logged
    question: str
    private: bool
    channel_id: int
    user_id: int
    deferred_at: float

    @property
    def key(self) -> str:
        return f"interaction:{self.interaction_id}"

    @classmethod
    def of(cls, interaction: discord.Interaction, question: str, private: bool) -> DeferredAsk:
        return cls(
            interaction.id,
            interaction.application_id,
            interaction.token,
            question,
            private,
            interaction.channel_id,
            interaction.user.id,
            time.time(),
        )


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Discord: could not finish %s", task.get_name(), exc_info=task.exception())


def _thread_name(question: str) -> str:
    """Discord thread names are 1–100 characters."""
    name = " ".join(question.split())
    return (name[:97] + "…" if len(name) > 100 else name) or "Follow-up"


class HelpdeskTree(app_commands.CommandTree):
    """The command tree, answering people only."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return from_a_person(interaction)


class HelpdeskClient(discord.Client):
    """The discord.py client: registers the commands at login and hands gateway events to the connector."""

    def __init__(self, connector: DiscordConnector, intents: discord.Intents):
        super().__init__(intents=intents, allowed_mentions=NO_MENTIONS)
        self.helpdesk = connector  # not "connector": discord.Client takes an aiohttp connector option
        drop_malformed_events(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(VoteButton, PublishButton, EscalateButton, SaveButton)
        await self.helpdesk.register_commands()

    async def on_connect(self) -> None:
        self.helpdesk.connected.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.helpdesk.on_thread_message(message)


class DiscordConnector:
    """Answers `/ask` on Discord through a HelpdeskBot.

    `start()` logs in, registers the command, and returns once the gateway session is READY; the gateway
    then runs in a background task until `stop()`.
    """

    def __init__(self, bot: HelpdeskBot, settings: Settings):
        self.bot = bot
        self.settings = settings
        self.guild_ids = list(settings.discord_guild_ids)
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = settings.discord_answer_threads  # replies in answer threads
        self.learning = (
            DiscordLearning(
                bot,
                settings.discord_trusted_role,
                open_learnt_answers(settings),
                open_offers(settings, "save", SAVE_OFFERED_FOR),
            )
            if settings.discord_trusted_role and settings.discord_answer_threads
            else None
        )
        # Replies that do not mention the bot carry their text only with this (privileged) intent.
        intents.message_content = self.learning is not None
        self.client = HelpdeskClient(self, intents)
        self.tree = HelpdeskTree(self.client)
        self.tree.error(self._on_command_error)
        guilds = {"guilds": [discord.Object(g) for g in self.guild_ids]} if self.guild_ids else {}
        self.tree.add_command(self._ask_command(), **guilds)
        self.handoff = DiscordHandoff(bot, settings)
        # Every replica connected to the gateway receives every event: the first to claim one handles it.
        self.ledger = open_ledger(settings, "discord-events")
        self.connected = asyncio.Event()
        self._gateway: asyncio.Task | None = None
        self._publishable = open_offers(settings, "publish", PUBLISHABLE_FOR)  # private answers
        self.threads = open_thread_memory(settings)
        # Deferred /ask replies not answered yet: a replica that dies leaves them to the others' sweepers.
        self.pending = open_pending_events(settings, "discord")
        self.sweeper = PendingEventSweeper(self.pending, self._resume, ANSWER_LEASE_S, SWEEP_INTERVAL_S)
        self._answering: set[asyncio.Task] = set()

    async def first_to_handle(self, event: discord.Interaction | discord.Message) -> bool:
        """True for the one replica of the bot that handles an interaction or message (every replica gets it).

        When the ledger cannot be used, every replica handles it: answered twice rather than not at all.
        """
        kind = "message" if isinstance(event, discord.Message) else "interaction"
        try:
            return await self.ledger.claim(f"{kind}:{event.id}")
        except Exception as error:
            log.error("Cannot tell whether another replica handles Discord %s %s: %s", kind, event.id, error)
            return True

    @staticmethod
    def configured(settings: Settings) -> bool:
        """True when a bot token is set."""
        return settings.discord_bot_token is not None

    async def start(self) -> None:
        """Log in, register /ask, connect; returns when READY (the gateway keeps running in a task)."""
        if self.settings.discord_bot_token is None:
            msg = "DISCORD_BOT_TOKEN is not set: copy the token from the Developer Portal (Bot → Reset Token)"
            raise RuntimeError(msg)
        point_discord_at(self.settings.discord_api_url, self.settings.discord_gateway_url)
        try:
            await self.client.login(self.settings.discord_bot_token.get_secret_value())
        except discord.LoginFailure:
            await self.client.close()
            msg = (
                "Discord rejected DISCORD_BOT_TOKEN: copy a fresh token from the Developer Portal "
                "(Bot → Reset Token)"
            )
            raise RuntimeError(msg) from None
        except BaseException:
            await self.client.close()
            raise
        self._gateway = asyncio.create_task(self.client.connect(), name="discord-gateway")
        ready = asyncio.create_task(self.connected.wait())
        done, _ = await asyncio.wait(
            {self._gateway, ready}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            error = self._gateway.exception() if self._gateway in done else None
            await self.stop()
            msg = f"Could not connect to the Discord gateway at {self.settings.discord_gateway_url}"
            raise RuntimeError(msg) from error
        self._gateway.add_done_callback(self._gateway_ended)
        log.info("Discord connected as %s (%s)", self.client.user, self._scope())
        self.sweeper.start()

    async def stop(self) -> None:
        """Let answers in progress finish (for a few seconds at most: the others are taken over by another
        replica, or by this one once restarted), then disconnect and wait for the gateway task to end."""
        await self.sweeper.stop()
        if self._answering:
            _, unfinished = await asyncio.wait(self._answering, timeout=STOP_GRACE_S)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self.client.close()
        if self._gateway is not None:
            await asyncio.gather(self._gateway, return_exceptions=True)
            self._gateway = None

    def _gateway_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Discord gateway stopped: %r", task.exception())

    def _scope(self) -> str:
        return f"guilds {', '.join(map(str, self.guild_ids))}" if self.guild_ids else "all guilds"

    def allowed(self, guild_id: int | None) -> bool:
        """Whether the bot works in this guild: any guild, or only those in DISCORD_GUILD_IDS."""
        return guild_id is not None and (not self.guild_ids or guild_id in self.guild_ids)

    async def register_commands(self) -> None:
        """Per guild when DISCORD_GUILD_IDS is set (instant), else globally (may take up to an hour)."""
        if self.guild_ids:
            for guild_id in self.guild_ids:
                await self.tree.sync(guild=discord.Object(guild_id))
        else:
            await self.tree.sync()
        log.info("Discord /ask registered for %s", self._scope())

    def _ask_command(self) -> app_commands.Command:
        @app_commands.command(name="ask", description="Ask the helpdesk; the answer cites its sources.")
        @app_commands.describe(
            question="What do you want to know?",
            private="Only you see the answer (you can post it to the channel afterwards).",
        )
        @app_commands.guild_only()
        async def ask(
            interaction: discord.Interaction,
            question: app_commands.Range[str, 1, 1000],
            private: bool = False,
        ) -> None:
            await self.ask(interaction, question, private)

        return ask

    async def ask(self, interaction: discord.Interaction, question: str, private: bool) -> None:
        """Defer at once (Discord allows 3 s), record the question as pending, answer, then send the answer
        as followups."""
        if not await self.first_to_handle(interaction) or not await self._defer(
            interaction, ephemeral=private
        ):
            return
        deferred = DeferredAsk.of(interaction, question, private)
        try:
            await self.pending.add(deferred.key, asdict(deferred), ANSWER_LEASE_S)
        except Exception as error:  # answered all the same, though no other replica could finish it
            log.warning("Discord: could not record interaction %s as pending (%s)", interaction.id, error)
        await self._answer_deferred(deferred, interaction.followup, followup_first=True)

    async def _resume(self, pending: PendingEvent) -> None:
        """Answer in its deferred reply an /ask whose replica stopped before answering it (or send the rest of
        the answer it had begun sending)."""
        deferred = DeferredAsk(**pending.payload)
        age_s = time.time() - deferred.deferred_at
        if age_s > ANSWERABLE_FOR_S:
            log.error(
                "Discord: gave up on interaction %s, deferred %d minutes ago by a replica that stopped: "
                "Discord no longer takes its reply",
                deferred.interaction_id,
                age_s // 60,
            )
            await self.pending.finish(pending.key, GIVEN_UP)
            return
        # The webhook Interaction.followup is, rebuilt from the stored token, on this client's connection.
        state = self.client._connection
        webhook = discord.Webhook.from_state(
            {"id": deferred.application_id, "type": 3, "token": deferred.token}, state
        )
        delivery = Delivery.from_reply_id(pending.reply_id)
        if delivery is not None:
            log.info(
                "Discord: sending answer %s of interaction %s on from its message %d of %d",
                delivery.answer.id,
                deferred.interaction_id,
                delivery.sent + 1,
                len(delivery.messages),
            )
        task = asyncio.create_task(
            self._answer_deferred(deferred, webhook, followup_first=False, delivery=delivery),
            name=f"discord-{pending.key}",
        )
        self._answering.add(task)
        task.add_done_callback(_log_failure)

    async def _answer_deferred(
        self,
        deferred: DeferredAsk,
        webhook: discord.Webhook,
        *,
        followup_first: bool,
        delivery: Delivery | None = None,
    ) -> None:
        """Answer into the deferred reply (its first followup, or an edit of it), keeping the lease meanwhile;
        the pending record is finished once the asker has an answer or an apology (not if stopped).

        With a `delivery` a replica that stopped recorded, its answer is sent on from where it stopped.
        """
        task = asyncio.current_task()
        self._answering.add(task)
        try:
            async with leased(self.pending, deferred.key, ANSWER_LEASE_S):
                answer = (
                    await self._answer_question(deferred, webhook) if delivery is None else delivery.answer
                )
                if answer is not None:  # else the asker got an apology
                    await self._deliver(
                        webhook,
                        deferred.interaction_id,
                        deferred.channel_id,
                        answer,
                        private=deferred.private,
                        followup_first=followup_first,
                        delivery=delivery,
                        on_progress=functools.partial(self._note_delivery, deferred.key),
                    )
            try:
                await self.pending.finish(deferred.key)
            except Exception as error:  # another replica may answer it again once the lease lapsed
                log.warning("Discord: could not record interaction %s as answered (%s)", deferred.key, error)
        finally:
            self._answering.discard(task)

    async def _note_delivery(self, key: str, delivery: Delivery) -> None:
        """Record how far the answer to the /ask `key` got, for a replica that would take it over."""
        try:
            await self.pending.renew(key, ANSWER_LEASE_S, reply_id=delivery.to_reply_id())
        except Exception as error:  # a replica taking the /ask over would answer it anew
            log.warning("Discord: could not record how far answer %s got (%s)", delivery.answer.id, error)

    async def _answer_question(self, deferred: DeferredAsk, webhook: discord.Webhook) -> Answer | None:
        """The bot's answer to a deferred /ask (kept to be posted publicly if private), or None once the asker
        was told answering failed."""
        asked = Question(
            deferred.question,
            asker=str(deferred.user_id),
            channel=str(deferred.channel_id),
            conversation_id=str(deferred.interaction_id),
            platform="discord",
        )
        try:
            answer = await self.bot.answer(asked)
        except Exception:
            log.exception("Could not answer the Discord question of interaction %s", deferred.interaction_id)
            await self._apologise(webhook, deferred.interaction_id, public_thinking=not deferred.private)
            return None
        if deferred.private:
            try:
                await self._publishable.keep(answer.id, answer.to_record())
            except OffersError as error:
                log.error("The private Discord answer %s cannot be posted publicly: %s", answer.id, error)
        return answer

    async def publish(self, interaction: discord.Interaction, answer_id: str) -> None:
        """Post a private answer to the channel for everyone, as the clicker's interaction response."""
        try:
            record = await self._publishable.take(answer_id)
        except OffersError as error:
            log.error("Cannot post the Discord answer %s publicly: %s", answer_id, error)
            await self._reply_privately(interaction, NOT_PUBLISHED)
            return
        if record is None:
            await self._reply_privately(
                interaction, "This answer was already posted or is too old: ask again with /ask."
            )
            return
        if await self._defer(interaction, ephemeral=False):
            await self._deliver(
                interaction.followup,
                interaction.id,
                interaction.channel_id,
                Answer.from_record(record),
                private=False,
            )

    async def record_vote(self, interaction: discord.Interaction, answer_id: str, vote: str) -> None:
        """Store a 👍/👎 through the bot service and acknowledge the click privately."""
        try:
            await self.bot.feedback(answer_id, vote, voter=str(interaction.user.id))
        except UnknownAnswer:
            log.warning("Discord: feedback for unknown answer %s ignored", answer_id)
            reply = UNKNOWN_ANSWER
        except JournalError:  # logged by the bot
            reply = VOTE_NOT_RECORDED
        except Exception:
            log.exception("Could not record Discord feedback on answer %s", answer_id)
            reply = VOTE_NOT_RECORDED
        else:
            reply = "Thanks for the feedback!" if vote == "up" else "Thanks, we'll use this to improve."
        await self._reply_privately(interaction, reply)

    async def _reply_privately(self, interaction: discord.Interaction, text: str) -> None:
        """Answer a click with a message only the clicker sees; an expired click is logged, not raised."""
        try:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as error:
            _log_reply_failure(interaction.id, error, "its reply")

    async def _defer(self, interaction: discord.Interaction, *, ephemeral: bool) -> bool:
        try:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except discord.HTTPException as error:
            _log_reply_failure(interaction.id, error, "its acknowledgement")
            return False
        return True

    async def _deliver(
        self,
        webhook: discord.Webhook,
        interaction_id: int,
        channel_id: int,
        answer: Answer,
        *,
        private: bool,
        followup_first: bool = True,
        delivery: Delivery | None = None,
        on_progress: Callable[[Delivery], Awaitable[None]] | None = None,
    ) -> None:
        """Send the answer as followups of the interaction's `webhook` (the first replaces "thinking…", or, if
        not `followup_first`, is an edit of it), then open its thread if enabled.

        A `delivery` begun before goes on from its first message not sent; `on_progress` gets the delivery
        before the first message is sent and after each one.
        """
        progress = delivery or Delivery(answer, tuple(render(answer)))
        if on_progress is not None:
            await on_progress(progress)

        async def followup(content: str, first: bool, **kwargs) -> discord.Message:
            if first and not followup_first:
                return await webhook.edit_message("@original", content=content, **kwargs)
            return await webhook.send(content, ephemeral=private, wait=True, **kwargs)

        async def sent_one(message: discord.Message) -> None:
            nonlocal progress
            progress = progress.after_sending(message.id)
            if on_progress is not None:
                await on_progress(progress)

        try:
            await self._send_answer(
                followup,
                answer,
                publishable=private,
                messages=progress.messages,
                start=progress.sent,
                on_sent=sent_one,
            )
        except Exception as error:
            if _expired(error):
                log.error(
                    "Discord interaction %s expired before its answer %s was sent (Discord takes replies for "
                    "15 minutes): the asker got no answer",
                    interaction_id,
                    answer.id,
                )
                return
            log.exception("Could not send the Discord answer %s", answer.id)
            await self._apologise(webhook, interaction_id, public_thinking=not private and not progress.sent)
            return
        if not private and self.settings.discord_answer_threads and progress.first_message_id is not None:
            await self._open_thread(channel_id, progress.first_message_id, answer)

    async def _send_answer(
        self,
        send: SendPart,
        answer: Answer,
        *,
        publishable: bool,
        messages: Sequence[str] | None = None,
        start: int = 0,
        on_sent: Callable[[discord.Message], Awaitable[None]] | None = None,
    ) -> None:
        """Send the messages of an answer (`messages`, else rendered here) from `start` on, each handed to
        `on_sent` once sent, with the buttons under the last one."""
        messages = render(answer) if messages is None else messages
        for index in range(start, len(messages)):
            extra = (
                {"view": answer_view(answer.id, publishable=publishable, escalation=self.handoff.configured)}
                if index == len(messages) - 1
                else {}
            )
            message = await send(messages[index], index == 0, allowed_mentions=NO_MENTIONS, **extra)
            if on_sent is not None:
                await on_sent(message)

    async def _apologise(
        self, webhook: discord.Webhook, interaction_id: int, *, public_thinking: bool
    ) -> None:
        """Replace "thinking…" with an apology only the asker sees (`webhook`: the interaction's followups)."""
        try:
            if public_thinking:
                # The first followup would inherit the public "thinking…" message: remove it first.
                await webhook.delete_message("@original")
            await webhook.send(APOLOGY, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as error:
            _log_reply_failure(interaction_id, error, "the apology")

    async def _open_thread(self, channel_id: int, message_id: int, answer: Answer) -> None:
        """A thread on the answer's first message, where replies to the bot continue the conversation."""
        channel = self.client.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel):
            return  # threads start from messages in text channels only
        try:
            thread = await channel.create_thread(
                name=_thread_name(answer.question), message=discord.Object(message_id)
            )
        except discord.HTTPException:
            log.warning(
                "Could not open a thread on Discord answer %s (missing permission?)", answer.id, exc_info=True
            )
            return
        try:
            await self.threads.add(str(thread.id), answer.question, answer.text)
            await self.bot.journal.continue_in(answer.id, str(thread.id))
        except (JournalError, ThreadMemoryError) as error:
            log.error("The thread of Discord answer %s is not recorded: %s", answer.id, error)

    async def on_thread_message(self, message: discord.Message) -> None:
        """A message in one of the bot's answer threads: one mentioning the bot is answered with the thread's
        history; another, by a trusted person where the bot could not answer, is offered to be saved."""
        me = self.client.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return  # other bots and webhooks are never answered: two bots could answer each other forever
        thread_id = message.channel.id
        try:
            history = await self.threads.turns(str(thread_id))
        except ThreadMemoryError as error:
            log.error("The earlier turns of Discord thread %s cannot be read: %s", thread_id, error)
            history = None
        owned = isinstance(message.channel, discord.Thread) and message.channel.owner_id == me.id
        if history is None and not owned:
            return  # not an answer thread
        if not self.allowed(message.guild.id if message.guild else None) or not await self.first_to_handle(
            message
        ):
            return
        if not any(user.id == me.id for user in message.mentions):
            if self.learning is not None:
                try:
                    await self.learning.on_reply(message)
                except Exception:
                    log.exception("Could not offer to save the Discord reply %s", message.id)
            return
        text = re.sub(rf"<@!?{me.id}>", "", message.content).strip()
        if not text:
            return

        async def reply(content: str, first: bool, **kwargs) -> discord.Message:
            return await message.channel.send(content, reference=message if first else None, **kwargs)

        asked = Question(
            text,
            asker=str(message.author.id),
            history=history or (),
            channel=str(thread_id),
            conversation_id=str(thread_id),
            platform="discord",
        )
        try:
            async with message.channel.typing():
                answer = await self.bot.answer(asked)
            await self._send_answer(reply, answer, publishable=False)
        except Exception:
            log.exception("Could not answer the Discord follow-up %s", message.id)
            await message.channel.send(APOLOGY, reference=message, allowed_mentions=NO_MENTIONS)
            return
        try:
            await self.threads.add(str(thread_id), text, answer.text)
        except ThreadMemoryError as error:
            log.error("The turns of Discord thread %s are not recorded: %s", thread_id, error)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Errors before /ask runs (unknown command, failed check): tell the user, never stay silent."""
        if isinstance(error, app_commands.CommandNotFound | app_commands.CheckFailure):
            # CommandNotFound: a guild outside DISCORD_GUILD_IDS still shows an old global /ask.
            reply = "The helpdesk is not enabled here: use /ask in a server channel where it is."
        else:
            log.error("Discord command failed", exc_info=error)
            reply = APOLOGY
        try:
            if interaction.response.is_done():
                await interaction.followup.send(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                await interaction.response.send_message(reply, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            log.warning("Could not report a command error to Discord interaction %s", interaction.id)
