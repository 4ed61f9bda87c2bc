"""The Slack connector: answers @mentions, thread follow-ups and DMs with slack-bolt's AsyncApp."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.journal import JournalError, UnknownAnswer
from bot.runtime import open_learnt_answers
from bot.service import HelpdeskBot
from bot.settings import Settings
from connectors.dedupe import DAY_S, EVENT_TTL_S, open_ledger
from connectors.pending_events import (
    SWEEP_INTERVAL_S,
    PendingEvent,
    PendingEventSweeper,
    open_pending_events,
)
from connectors.slack_events import (
    history_from_replies,
    in_thread,
    is_answer,
    is_direct_message,
    is_person_message,
    mentions,
    reply_to,
    thread_root,
    to_question,
)
from connectors.slack_handoff import SlackHandoff
from connectors.slack_http import SlackRequestGate
from connectors.slack_learning import SAVE_ACTION, SlackLearning
from connectors.slack_render import (
    ESCALATION_ACTION,
    FEEDBACK_ACTION_PREFIX,
    USAGE_HINT,
    acknowledge_feedback,
    answer_metadata,
    render,
    reply_metadata,
)
from connectors.slack_reply import ThreadReply

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# A thread the bot answered in keeps getting follow-up answers for this long.
THREAD_TTL_S = 30 * DAY_S
REPLIES_LIMIT = 200
STOP_GRACE_S = 10.0
# How long a claim on an event holds unless the replica answering it renews it (every third of it): shorter
# than the minute Slack waits before its second retry, so the retry of an event whose replica died while
# answering finds the claim expired and is answered; far longer than a renewal takes on a loaded database.
# An event acknowledged by a replica that died is taken over by another once the claim lapsed.
CLAIM_LEASE_S = 30.0
# What a replica answers a retry of an event another replica is still answering: Slack then retries later,
# and that retry is either dropped (answered meanwhile) or answered (the other replica died).
IN_PROGRESS_ELSEWHERE = {"ok": False, "error": "event being answered; retry later"}
_FEEDBACK_ACTION = re.compile(rf"^{FEEDBACK_ACTION_PREFIX}(up|down)$")
VOTE_NOT_RECORDED = "Sorry, your vote could not be recorded right now. Please try again later."


class _QuietBolt(logging.Filter):
    """Drops Bolt's warning that SLACK_BOT_TOKEN (which Bolt reads itself) is unused: our client carries it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


log.addFilter(_QuietBolt())


def _api_base(url: str) -> str:
    # slack_sdk joins method names onto the base URL: without the trailing slash the last segment is lost.
    return url if url.endswith("/") else url + "/"


class SlackConnector:
    """Receives Slack events (Events API over HTTP, or Socket Mode) and answers in threads."""

    def __init__(self, settings: Settings, bot: HelpdeskBot):
        if settings.slack_bot_token is None:
            msg = "Set SLACK_BOT_TOKEN (the xoxb- token from OAuth & Permissions) to connect Slack"
            raise ValueError(msg)
        app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        if app_token is None and settings.slack_signing_secret is None:
            msg = (
                "Set SLACK_SIGNING_SECRET (Basic Information → App Credentials) to receive events over "
                "HTTP, or SLACK_APP_TOKEN (an xapp- token) to use Socket Mode"
            )
            raise ValueError(msg)
        self.bot = bot
        self.app_token = app_token
        self.allowed_channels = set(settings.slack_allowed_channels)
        self.ledger = open_ledger(settings, "slack-events")
        self.pending = open_pending_events(settings, "slack")
        self.sweeper = PendingEventSweeper(self.pending, self._resume, CLAIM_LEASE_S, SWEEP_INTERVAL_S)
        self.client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=_api_base(settings.slack_api_url),
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            ],
        )
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        # Requests over HTTP are verified by the gate before Bolt parses them (Bolt would log their bodies).
        self.gate = SlackRequestGate(secret) if secret else None
        self.app = AsyncApp(
            name="helpdesk",
            client=self.client,
            signing_secret=secret,
            request_verification_enabled=False,
            # Slack gets its 200 once the event is recorded as pending (answered by a replica even if this
            # one dies); listeners only record and hand their work to a task, so that takes milliseconds.
            process_before_response=True,
            logger=log,
        )
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.action(_FEEDBACK_ACTION)(self._on_feedback)
        self.handoff = (
            SlackHandoff(
                self.client, bot, settings.slack_escalation_channel, settings.slack_escalation_mention
            )
            if settings.slack_escalation_channel
            else None
        )
        self.app.action(ESCALATION_ACTION)(self._on_escalation)
        self.learning = (
            SlackLearning(self.client, bot, settings.slack_trusted_users, open_learnt_answers(settings))
            if settings.slack_trusted_users
            else None
        )
        self.app.action(SAVE_ACTION)(self._on_save)
        self.app.error(self._on_error)
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: set[asyncio.Task] = set()
        self._answering: set[str] = set()  # ledger keys of the events this process is answering
        self._claiming: dict[str, asyncio.Future[bool]] = {}  # claims this process is making, by first key

    @property
    def socket_mode(self) -> bool:
        """Events arrive over a WebSocket (SLACK_APP_TOKEN) rather than HTTP."""
        return self.app_token is not None

    def mount(self, http: web.Application) -> None:
        """Serve the Events API and interactivity (button clicks) at /slack/events."""
        http.router.add_post(EVENTS_PATH, self._handle_http)

    async def _handle_http(self, request: web.Request) -> web.Response:
        assert self.gate is not None, "mounted only with SLACK_SIGNING_SECRET set"
        admitted = await self.gate.admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        if "X-Slack-Retry-Num" in request.headers and await self._answering_elsewhere(admitted.body):
            return web.json_response(IN_PROGRESS_ELSEWHERE, status=503)
        return await to_aiohttp_response(await self.app.async_dispatch(admitted))

    async def _answering_elsewhere(self, body: dict) -> bool:
        """An event claimed by another process and not answered yet: it may be answering, or have died."""
        if body.get("type") != "event_callback" or not body.get("event_id"):
            return False
        key = f"event:{body['event_id']}"
        if not await self.ledger.contains(key) or await self.ledger.contains(_answered_key(key)):
            return False
        # Claimed and not answered: by this process (alive, so the retry is simply dropped), or another one.
        claiming = self._claiming.get(key)
        if claiming is not None:
            return not await asyncio.shield(claiming)
        return key not in self._answering

    async def start(self) -> None:
        """Check the token, then connect Socket Mode if configured (HTTP mode needs nothing more)."""
        try:
            identity = await self.client.auth_test()
        except SlackApiError as error:
            msg = (
                f"Slack rejected SLACK_BOT_TOKEN ({error.response.get('error')}): copy the Bot User OAuth "
                "Token (xoxb-) from OAuth & Permissions after installing the app"
            )
            raise RuntimeError(msg) from None
        except aiohttp.ClientError as error:
            msg = f"Could not reach the Slack API at {self.client.base_url} ({error}); check SLACK_API_URL"
            raise RuntimeError(msg) from error
        mode = "Socket Mode" if self.socket_mode else f"HTTP at {EVENTS_PATH}"
        log.info("Slack: connected as %s in %s (%s)", identity.get("user"), identity.get("team"), mode)
        if self.socket_mode:
            self._socket = AsyncSocketModeHandler(self.app, app_token=self.app_token)
            socket_client = self._socket.client
            try:
                # Fetched here so a bad token fails start-up; connect() would retry it forever.
                socket_client.wss_uri = await socket_client.issue_new_wss_url()
            except SlackApiError as error:
                msg = (
                    f"Slack rejected SLACK_APP_TOKEN ({error.response.get('error')}): create an app-level "
                    "token (xapp-) with the connections:write scope under Basic Information"
                )
                raise RuntimeError(msg) from None
            await self._socket.connect_async()
        self.sweeper.start()

    async def stop(self) -> None:
        """Disconnect, then let answers in progress finish (for a few seconds at most; the others are taken
        over by another replica, or by this one once restarted)."""
        await self.sweeper.stop()
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()

    def _allowed(self, event: dict) -> bool:
        return (
            not self.allowed_channels or is_direct_message(event) or event["channel"] in self.allowed_channels
        )

    async def _on_mention(self, event: dict, body: dict, context) -> None:
        if not is_person_message(event):
            return  # another bot (or an app) mentioning us: answering could loop two bots forever
        await self._take(event, body, context.bot_user_id)

    async def _on_message(self, event: dict, body: dict, context) -> None:
        bot_user_id = context.bot_user_id
        if not is_person_message(event):
            return
        if not is_direct_message(event):
            # A mention arrives as app_mention too; otherwise only follow-ups in the bot's threads count.
            if mentions(event.get("text", ""), bot_user_id) or not in_thread(event):
                return
            if not await self.ledger.contains(_thread_key(event["channel"], thread_root(event))):
                return
            if self.learning is not None and await self._answered_by_a_person(event):
                return
        await self._take(event, body, bot_user_id)

    async def _answered_by_a_person(self, event: dict) -> bool:
        """A reply by someone other than the asker where the bot refused or was asked to hand off: a person
        answering, which the bot does not answer; its author may be offered to save it."""
        row = await self.learning.question_replied_to(event)
        if row is None:
            return False
        if self._allowed(event) and await self.ledger.claim(f"message:{event['channel']}:{event['ts']}"):
            self._spawn(self.learning.offer(event, row), f"offer to save the reply {event['ts']}")
        return True

    def _spawn(self, work: Awaitable[None], what: str) -> None:
        """Run work in the background (stop() waits for it); a failure is logged with what was being done."""

        async def logged() -> None:
            try:
                await work
            except Exception:
                log.exception("Slack: could not %s", what)

        task = asyncio.create_task(logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, event: dict, body: dict, bot_user_id: str | None) -> None:
        """Answer a message once: retries and redeliveries of an event already taken are dropped."""
        if not self._allowed(event):
            return
        keys = [f"message:{event['channel']}:{event['ts']}"]
        if body.get("event_id"):
            keys.insert(0, f"event:{body['event_id']}")
        claim = asyncio.ensure_future(self.ledger.claim(*keys, ttl_s=CLAIM_LEASE_S))
        self._claiming[keys[0]] = claim
        try:
            claimed = await claim
        finally:
            if self._claiming.get(keys[0]) is claim:
                del self._claiming[keys[0]]
        if not claimed:
            log.info("Slack: event %s already answered; redelivery ignored", body.get("event_id"))
            return
        record = None
        try:
            record = await self.pending.add(
                keys[0], {"keys": keys, "event": event, "bot_user_id": bot_user_id}, CLAIM_LEASE_S
            )
        except Exception as error:  # answered all the same, though no other replica could finish it
            log.warning("Slack: could not record event %s as pending (%s)", keys[0], error)
        # A redelivery taken after the lease of a replica that stopped answering it lapsed: like a takeover,
        # the answer goes into the reply that replica left.
        retaken = record is not None and record.attempts > 1
        self._answering.update(keys)
        self._spawn(
            self._answer_claimed(
                keys, event, bot_user_id, record.reply_id if retaken else None, taken_over=retaken
            ),
            f"answer message {event['ts']}",
        )

    async def _resume(self, pending: PendingEvent) -> None:
        """Answer an event whose replica stopped before it was answered, as that replica would have."""
        keys, event = pending.payload["keys"], pending.payload["event"]
        if not await self.ledger.claim(*keys, ttl_s=CLAIM_LEASE_S):
            if await self.ledger.contains(_answered_key(keys[0])):
                await self.pending.finish(pending.key)
            return  # else a redelivery was taken meanwhile: the replica that took it answers it
        self._answering.update(keys)
        self._spawn(
            self._answer_claimed(
                keys, event, pending.payload["bot_user_id"], pending.reply_id, taken_over=True
            ),
            f"answer message {event['ts']} left unanswered",
        )

    async def _answer_claimed(
        self,
        keys: list[str],
        event: dict,
        bot_user_id: str | None,
        reply_ts: str | None = None,
        *,
        taken_over: bool = False,
    ) -> None:
        """Answer, renewing the claim meanwhile; then remember the event as answered for Slack's redeliveries.

        An event `taken_over` from a replica that stopped is answered in the message that replica was writing
        the answer into: `reply_ts` if it recorded it, else the one marked as its reply in the thread.
        """
        renewal = asyncio.create_task(self._renew_claim(keys))

        async def note_reply(ts: str) -> None:
            try:
                await self.pending.renew(keys[0], CLAIM_LEASE_S, reply_id=ts)
            except Exception as error:  # a replica taking the event over would post a new placeholder
                log.warning("Slack: could not note the reply to event %s (%s)", keys[0], error)

        try:
            # Posts an apology when answering fails: the event is answered all the same.
            await self._answer(event, bot_user_id, note_reply, reply_ts=reply_ts, taken_over=taken_over)
            await self.pending.finish(keys[0])
            for key in keys:
                await self.ledger.remember(key, EVENT_TTL_S)
            await self.ledger.remember(_answered_key(keys[0]), EVENT_TTL_S)
        finally:  # cancelled at shutdown: the claim expires, and a retry of the event is answered
            renewal.cancel()
            self._answering.difference_update(keys)

    async def _renew_claim(self, keys: list[str]) -> None:
        while True:
            await asyncio.sleep(CLAIM_LEASE_S / 3)
            try:
                for key in keys:
                    await self.ledger.remember(key, CLAIM_LEASE_S)
                await self.pending.renew(keys[0], CLAIM_LEASE_S)
            except Exception as error:  # the answer goes on; a retry may then answer the event again
                log.warning("Slack: could not renew the claim on %s (%s)", keys[0], error)

    async def _answer(
        self,
        event: dict,
        bot_user_id: str | None,
        on_reply: Callable[[str], Awaitable[None]] | None = None,
        *,
        reply_ts: str | None = None,
        taken_over: bool = False,
    ) -> None:
        """Answer in the event's thread; `on_reply` gets the ts of the message the answer goes into.

        Taken over, the answer goes into the reply the stopped replica left (see `_reply_left`), unless that
        holds the answer already.
        """
        channel, root = event["channel"], thread_root(event)
        reply = ThreadReply(self.client, channel, root, marker=reply_metadata(event["ts"]))
        try:
            earlier = await self._reply_left(event, bot_user_id, reply_ts) if taken_over else None
            if earlier is not None and is_answer(earlier):
                log.info("Slack: message %s was answered before its replica stopped", event.get("ts"))
                return
            if earlier is not None:
                reply.resume(earlier["ts"])
            question = to_question(event, bot_user_id)
            if not question.text:
                await reply.finish(USAGE_HINT)
                return
            await self.ledger.remember(_thread_key(channel, root), THREAD_TTL_S)
            if reply.ts is None:
                await reply.start()
            if on_reply is not None and reply.ts != reply_ts:
                await on_reply(reply.ts)
            if in_thread(event):
                history = await self._thread_history(channel, root, event["ts"], bot_user_id)
                question = dataclasses.replace(question, history=history)
            answer = await self.bot.answer(question, on_delta=reply.progress)
            await reply.finish(
                render(answer, escalation=self.handoff is not None), answer_metadata(answer.id, event["ts"])
            )
        except Exception as error:
            log.exception("Slack: could not answer message %s in %s (%s)", event.get("ts"), channel, error)
            await reply.apologise()

    async def _reply_left(self, event: dict, bot_user_id: str | None, reply_ts: str | None) -> dict | None:
        """The reply to `event` a replica that stopped answering it left in its thread, if any: the message it
        recorded (`reply_ts`), else the one marked as replying to the event (posted before it was recorded)."""
        channel, root = event["channel"], thread_root(event)
        if reply_ts is not None:
            return await self._thread_message(channel, root, reply_ts)
        response = await self.client.conversations_replies(
            channel=channel,
            ts=root,
            oldest=event["ts"],
            inclusive=True,
            limit=REPLIES_LIMIT,
            include_all_metadata=True,
        )
        return reply_to(response.get("messages", []), event["ts"], bot_user_id)

    async def _thread_message(self, channel: str, root: str, ts: str) -> dict | None:
        """The message `ts` of a thread (with its metadata), or None if it is gone."""
        response = await self.client.conversations_replies(
            channel=channel, ts=root, oldest=ts, latest=ts, inclusive=True, include_all_metadata=True
        )
        return next((m for m in response.get("messages", []) if m.get("ts") == ts), None)

    async def _thread_history(self, channel: str, root: str, before_ts: str, bot_user_id: str | None):
        response = await self.client.conversations_replies(
            channel=channel, ts=root, limit=REPLIES_LIMIT, include_all_metadata=True
        )
        return history_from_replies(response.get("messages", []), bot_user_id, before_ts)

    async def _on_feedback(self, ack, body: dict, action: dict) -> None:
        await ack()
        self._spawn(self._record_vote(body, action), "record a vote")

    async def _record_vote(self, body: dict, action: dict) -> None:
        vote = _FEEDBACK_ACTION.match(action["action_id"]).group(1)
        answer_id = action["value"]
        try:
            await self.bot.feedback(answer_id, vote, voter=body["user"]["id"])
        except UnknownAnswer:
            log.warning("Slack: feedback for unknown answer %s ignored", answer_id)
            return
        except JournalError:  # logged by the bot; the buttons stay so the vote can be given again later
            await self.client.chat_postEphemeral(
                channel=_channel_of(body), user=body["user"]["id"], text=VOTE_NOT_RECORDED
            )
            return
        message = body.get("message") or {}
        await self.client.chat_update(
            channel=_channel_of(body),
            ts=message.get("ts") or body["container"]["message_ts"],
            text=message.get("text", ""),
            blocks=acknowledge_feedback(message.get("blocks", []), vote),
            metadata=answer_metadata(answer_id),
        )

    async def _on_escalation(self, ack, body: dict, action: dict) -> None:
        await ack()
        if self.handoff is None:  # a button from before the escalation channel was unset
            log.info("Slack: Ask a human clicked, but HELPDESK_SLACK_ESCALATION_CHANNEL is not set")
            return
        self._spawn(
            self.handoff.on_click(body, action["value"], _channel_of(body), body.get("message") or {}),
            "hand an answer to a person",
        )

    async def _on_save(self, ack, body: dict, action: dict, context) -> None:
        await ack()
        if self.learning is None:  # an offer from before HELPDESK_SLACK_TRUSTED_USERS was emptied
            await self.client.chat_postEphemeral(
                channel=_channel_of(body), user=body["user"]["id"], text="Saving answers is turned off here."
            )
            return
        self._spawn(
            self.learning.on_save(body, action["value"], _channel_of(body), context.bot_user_id),
            "save a reply as an answer",
        )

    async def _on_error(self, error: Exception, body: dict) -> None:
        log.error("Slack: error handling a %s request: %s: %s", body.get("type"), type(error).__name__, error)


def _answered_key(claim_key: str) -> str:
    return f"answered:{claim_key}"


def _thread_key(channel: str, root: str) -> str:
    return f"thread:{channel}:{root}"


def _channel_of(action_body: dict) -> str:
    """The channel of the message whose button was clicked."""
    return (action_body.get("channel") or {}).get("id") or action_body["container"]["channel_id"]


def create_slack_connector(settings: Settings, bot: HelpdeskBot, http: web.Application) -> SlackConnector:
    """The Slack connector, with its Events API endpoint mounted on the server unless in Socket Mode."""
    connector = SlackConnector(settings, bot)
    if not connector.socket_mode:
        connector.mount(http)
    return connector
