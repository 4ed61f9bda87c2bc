"""A fake Slack on 127.0.0.1 (Web API + Socket Mode) that records every call, and signed Slack requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from connectors.slack_render import ANSWER_EVENT_TYPE

BOT_TOKEN = "xoxb-fake-bot-token-0123456789"
APP_TOKEN = "xapp-fake-app-token-0123456789"
SIGNING_SECRET = "fake-signing-secret-0123456789"
BOT_USER_ID = "UHELPDESK"
BOT_ID = "BHELPDESK"
TEAM_ID = "T0ACME"
ASKER = "U0ASKER"
CHANNEL = "C0SUPPORT"

T = TypeVar("T")


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    args: dict
    token: str | None
    at: float = field(default_factory=time.monotonic)


async def _resolved(value):
    """A condition's value, awaited when the condition is async (a journal read)."""
    return await value if inspect.isawaitable(value) else value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeSlack:
    """Serves the Web API methods the bot uses, keeps posted messages per channel, speaks Socket Mode."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[str, list[dict]] = {}
        self.acks: list[dict] = []
        self.ephemeral: list[dict] = []  # chat.postEphemeral calls: messages only their user sees
        self.profiles: dict[str, dict] = {}  # user id → profile, for users.info
        self.usergroups: dict[str, list[str]] = {}  # user group id → member ids, for usergroups.users.list
        self._failures: dict[str, list[Callable[[], web.Response]]] = {}
        self._held: dict[str, int] = {}  # method → how many of its next calls get no answer until released
        self._released = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._clock = 1_700_000_000
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._socket_mode)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self._released.set()
        for ws in self._sockets:
            await ws.close()
        await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def next_ts(self) -> str:
        self._clock += 1
        return f"{self._clock}.000100"

    # -- scripting -------------------------------------------------------------------------------------
    def fail(
        self, method: str, *, status: int = 429, retry_after: int = 1, error: str = "ratelimited"
    ) -> None:
        """The next call of `method` fails: 429 with Retry-After, or `ok: false` with `error` (status 200)."""
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        self._failures.setdefault(method, []).append(
            lambda: web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        )

    def hold(self, method: str) -> None:
        """The next call of `method` is carried out, but its caller gets no answer until `release()`: as when
        a bot is killed between Slack doing what it asked and the bot hearing back."""
        self._held[method] = self._held.get(method, 0) + 1

    def release(self) -> None:
        """Answer the calls held back."""
        self._released.set()

    def add_message(
        self, channel: str, text: str, *, user: str = ASKER, thread_ts: str | None = None, **extra
    ):
        """A message someone posted, visible to conversations.replies."""
        message = {"type": "message", "ts": self.next_ts(), "user": user, "text": text, **extra}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages.setdefault(channel, []).append(message)
        return message

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def bot_messages(self, channel: str) -> list[dict]:
        return [m for m in self.messages.get(channel, []) if m.get("user") == BOT_USER_ID]

    def answers(self, channel: str) -> list[dict]:
        """Bot messages that carry a finished answer."""
        return [
            m
            for m in self.bot_messages(channel)
            if (m.get("metadata") or {}).get("event_type") == ANSWER_EVENT_TYPE
        ]

    async def wait_for(self, condition: Callable[[], T | Awaitable[T]], timeout: float = 10.0) -> T:
        deadline = time.monotonic() + timeout
        while not (result := await _resolved(condition())):
            if time.monotonic() > deadline:
                msg = f"timed out; calls so far: {[c.method for c in self.calls]}"
                raise AssertionError(msg)
            await asyncio.sleep(0.02)
        return result

    # -- Web API ---------------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.pop("token", None)
        self.calls.append(Call(method, args, token))
        if self._failures.get(method):
            return self._failures[method].pop(0)()
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        result = handler(args)
        if self._held.get(method):
            self._held[method] -= 1
            await self._released.wait()
        return result if isinstance(result, web.Response) else web.json_response({"ok": True, **result})

    def _auth_test(self, args: dict) -> dict:
        return {
            "url": "https://acme.slack.example/",
            "team": "Acme",
            "user": "helpdesk",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict) -> dict:
        message = {"type": "message", "ts": self.next_ts(), "user": BOT_USER_ID, "bot_id": BOT_ID}
        message.update(_message_fields(args))
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.messages.setdefault(args["channel"], []).append(message)
        return {"channel": args["channel"], "ts": message["ts"], "message": message}

    def _chat_update(self, args: dict) -> dict | web.Response:
        for message in self.messages.get(args["channel"], []):
            if message["ts"] == args["ts"]:
                message.update(_message_fields(args))
                return {"channel": args["channel"], "ts": args["ts"], "text": message.get("text", "")}
        return web.json_response({"ok": False, "error": "message_not_found"})

    def _chat_postEphemeral(self, args: dict) -> dict:
        self.ephemeral.append(args)
        return {"message_ts": self.next_ts()}

    def _chat_getPermalink(self, args: dict) -> dict:
        return {"permalink": f"https://acme.slack.example/archives/{args['channel']}/p{args['message_ts']}"}

    def _users_info(self, args: dict) -> dict | web.Response:
        if args["user"] not in self.profiles:
            return web.json_response({"ok": False, "error": "user_not_found"})
        return {"user": {"id": args["user"], "profile": self.profiles[args["user"]]}}

    def _usergroups_users_list(self, args: dict) -> dict | web.Response:
        if args["usergroup"] not in self.usergroups:
            return web.json_response({"ok": False, "error": "no_such_subteam"})
        return {"users": self.usergroups[args["usergroup"]]}

    def _conversations_replies(self, args: dict) -> dict:
        root = args["ts"]
        with_metadata = _flag(args.get("include_all_metadata"))
        thread = sorted(
            (
                {k: v for k, v in m.items() if with_metadata or k != "metadata"}
                for m in self.messages.get(args["channel"], [])
                if (m["ts"] == root or m.get("thread_ts") == root) and _within(m["ts"], args)
            ),
            key=lambda m: float(m["ts"]),
        )
        limit = int(args.get("limit") or 1000)
        return {"messages": thread[:limit], "has_more": len(thread) > limit}

    def _apps_connections_open(self, args: dict) -> dict:
        return {"url": self.url.replace("http://", "ws://") + "/link"}

    # -- Socket Mode -----------------------------------------------------------------------------------
    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0HELP"}})
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                self.acks.append(json.loads(frame.data))
        return ws

    async def send_envelope(
        self, payload: dict, *, kind: str = "events_api", retry_attempt: int = 0
    ) -> float:
        """Push an envelope to the connected app; returns the seconds until it was acknowledged."""
        ws = await self.wait_for(lambda: next((s for s in self._sockets if not s.closed), None))
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": payload,
        }
        started = time.monotonic()
        await ws.send_json(envelope)
        await self.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks))
        return time.monotonic() - started


def _flag(value) -> bool:
    return str(value or "").lower() in ("1", "true")


def _within(ts: str, args: dict) -> bool:
    """Whether a message is within conversations.replies' `oldest`..`latest` (ends only with `inclusive`)."""
    inclusive = _flag(args.get("inclusive"))
    at = float(ts)
    if "oldest" in args and (at < float(args["oldest"]) or (at == float(args["oldest"]) and not inclusive)):
        return False
    return "latest" not in args or at < float(args["latest"]) or (at == float(args["latest"]) and inclusive)


def _message_fields(args: dict) -> dict:
    fields = {}
    for name in ("text", "blocks", "metadata"):
        value = args.get(name)
        if isinstance(value, str) and name != "text":
            value = json.loads(value)
        if value is not None:
            fields[name] = value
    return fields


# -- Events as Slack sends them ------------------------------------------------------------------------
def event_callback(event: dict, event_id: str | None = None) -> dict:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": "A0HELP",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def mention(fake: FakeSlack, question: str, *, channel: str = CHANNEL, thread_ts: str | None = None) -> dict:
    """An app_mention event for a message the fake has seen posted."""
    message = fake.add_message(channel, f"<@{BOT_USER_ID}> {question}", thread_ts=thread_ts)
    return {**message, "type": "app_mention", "channel": channel, "event_ts": message["ts"]}


def channel_message(fake: FakeSlack, text: str, *, channel: str = CHANNEL, thread_ts=None, **extra) -> dict:
    """A message event (message.channels, or message.im with channel_type="im")."""
    message = fake.add_message(channel, text, thread_ts=thread_ts, **extra)
    extra.setdefault("channel_type", "channel")
    return {"type": "message", "channel": channel, "event_ts": message["ts"], **extra, **message}


def block_action(message: dict, action_id: str, *, channel: str = CHANNEL, user: str = ASKER) -> dict:
    """The interactivity payload of a button click on a bot message."""
    block_id, button = next(
        (block.get("block_id"), element)
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    )
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user, "team_id": TEAM_ID},
        "api_app_id": "A0HELP",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
        "channel": {"id": channel},
        "message": message,
        "response_url": "https://hooks.slack.example/actions/1",
        "trigger_id": "1.2.3",
        "actions": [{**button, "block_id": block_id, "type": "button", "action_ts": str(time.time())}],
    }


def signed_request(payload: dict, *, secret: str = SIGNING_SECRET, timestamp: int | None = None, form=False):
    """(body, headers) signed exactly as Slack signs: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")."""
    body = urlencode({"payload": json.dumps(payload)}) if form else json.dumps(payload)
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    return body, {**signature_headers(body, secret=secret, timestamp=timestamp), "Content-Type": content_type}


def signature_headers(
    body: str | bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict:
    """The headers signing any body as Slack does."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slack_settings(tmp_path, fake: FakeSlack, **overrides):
    """Settings for a bot talking to this fake Slack over HTTP on a free local port."""
    from bot.settings import Settings

    values = {
        "data_dir": tmp_path / "server-data",
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "http_host": "127.0.0.1",
        "http_port": free_port(),
        "tone_enabled": False,
        "generator": "extractive",
        **overrides,
    }
    return Settings(**values)
