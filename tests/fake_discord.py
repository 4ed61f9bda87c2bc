"""A fake Discord (REST API + gateway) on 127.0.0.1 recording every call, for tests running real discord.py.

Usage, with the bot in the test's process or in a `helpdesk serve` subprocess (the fake runs in the test):

    fake = FakeDiscord(token="test-token")
    await fake.start()                  # a free port; fake.env() → DISCORD_BOT_TOKEN, _API_URL, _GATEWAY_URL
    await fake.wait_connected()         # the bot logged in, registered its commands and identified
    interaction = await fake.slash_command("ask", question="How do refunds work?")
    await fake.wait_for_calls("POST", r"/webhooks/")          # followups are webhook calls
    fake.interaction_messages(interaction)                    # → the messages as users would see them
    # (edits of a deferred reply, PATCH /webhooks/…/messages/@original, are applied to it)
    await fake.click(message_id, custom_id)                   # press a button on a message the bot sent
    fake.calls                                                # every REST call: method, path, query, body
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
EPHEMERAL = 64


@dataclass
class Call:
    """One REST request the fake received, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 200


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class _Interaction:
    payload: dict
    messages: list[str] = field(default_factory=list)  # ids of the messages sent with its token
    expired: tuple[int, dict] | None = None  # once set, what its webhook (followup) calls are answered


# How Discord answers webhook calls made with an interaction token that expired (after 15 minutes).
EXPIRED_TOKEN = {
    401: {"message": "Invalid Webhook Token", "code": 50027},
    404: {"message": "Unknown Webhook", "code": 10015},
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py decodes JSON only when Content-Type is exactly application/json (no charset).
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeDiscord:
    """Serves the REST endpoints and the gateway discord.py needs, records every call, and pushes events."""

    def __init__(self, token: str = "fake-discord-token", guild_id: int = 200_000_000_000_000_001):
        self.token = token
        self.app_id = 100_000_000_000_000_001  # a bot user's id is its application's id
        self.guild_id = guild_id
        self.channel_id = 300_000_000_000_000_001
        self.user = {"id": "400000000000000001", "username": "asker", "discriminator": "0", "avatar": None}
        self.bot_user = {
            "id": str(self.app_id),
            "username": "helpdesk",
            "discriminator": "0",
            "avatar": None,
            "bot": True,
        }
        self.calls: list[Call] = []
        self.commands: dict[int | None, list[dict]] = {}  # guild id (None = global) → registered commands
        self.messages: dict[str, dict] = {}
        self.threads: dict[str, dict] = {}
        self.member_roles: dict[str, list[str]] = {}  # user id → the ids of the guild roles they have
        self.guild_roles: list[str] = []  # roles of the guild besides @everyone (set before connecting)
        self.identified = asyncio.Event()
        self._interactions: dict[str, _Interaction] = {}
        self._failures: list[_Failure] = []
        self._lost: list[list] = []  # [method, path pattern, matching requests to let through first]
        self._released = asyncio.Event()
        self._expiring: list[int] = []  # statuses for the next interactions' tokens expiring once deferred
        self._sockets: set[web.WebSocketResponse] = set()
        self._ids = itertools.count(500_000_000_000_000_001)
        self._sequence = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (a free port unless one is given)."""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the gateway connections and the server."""
        self._released.set()
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def env(self) -> dict[str, str]:
        """The environment variables that point `helpdesk serve` at this fake."""
        return {
            "DISCORD_BOT_TOKEN": self.token,
            "DISCORD_API_URL": self.api_url,
            "DISCORD_GATEWAY_URL": self.gateway_url,
        }

    # -- test controls -------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request whose path matches the regex `path` with this status and JSON body."""
        self._failures.append(_Failure(method, re.compile(path), status, body or {}, headers or {}))

    def lose_next(self, method: str, path: str, *, after: int = 0) -> None:
        """The request matching the regex `path` that comes after `after` such requests never gets to Discord:
        it hangs until `release()`, then fails, as a request in flight when its sender was stopped."""
        self._lost.append([method, re.compile(path), after])

    def release(self) -> None:
        """End the requests `lose_next` holds."""
        self._released.set()

    def rate_limit_next(self, method: str, path: str, retry_after: float = 0.2) -> None:
        """A 429 as Discord sends it (through its proxy, hence `Via`), with the JSON `retry_after`."""
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        headers = {"Via": "1.1 google", "Retry-After": str(retry_after), "X-RateLimit-Scope": "user"}
        self.fail_next(method, path, 429, body, headers)

    def expire_next_token_after_defer(self, status: int = 401) -> None:
        """The next interaction's token expires right after its deferral: followups get 401 or 404."""
        self._expiring.append(status)

    def calls_to(self, method: str, path: str) -> list[Call]:
        """Calls with this method whose path matches the regex `path` (from its start)."""
        return [c for c in self.calls if c.method == method and re.match(path, c.path)]

    async def wait_for_calls(
        self, method: str, path: str, count: int = 1, timeout: float = 10.0
    ) -> list[Call]:
        """Wait for at least `count` matching calls (discord.py runs commands in background tasks)."""
        deadline = time.monotonic() + timeout
        while len(found := self.calls_to(method, path)) < count:
            if time.monotonic() > deadline:
                seen = "\n".join(f"  {c.method} {c.path} → {c.status}" for c in self.calls)
                msg = f"timed out waiting for {count} × {method} {path}; calls so far:\n{seen}"
                raise AssertionError(msg)
            await asyncio.sleep(0.02)
        return found

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until a bot identified on the gateway (it has registered its commands by then)."""
        await asyncio.wait_for(self.identified.wait(), timeout)

    async def dispatch(self, event: str, data: dict) -> None:
        """Push a gateway event (op 0) to every connected client."""
        frame = json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data})
        for socket in list(self._sockets):
            await socket.send_str(frame)

    async def slash_command(
        self,
        name: str,
        *,
        user: dict | None = None,
        channel_id: int | None = None,
        guild_id: int | None = None,
        **options: Any,
    ) -> dict:
        """Dispatch INTERACTION_CREATE for a registered slash command; returns the interaction payload.

        `guild_id` (default: the fake's guild) is where the user runs it; the command data names a guild
        only when the command is registered in that guild, as Discord does.
        """
        guild_id = guild_id or self.guild_id
        command = self._registered(name, guild_id)
        types = {o["name"]: o["type"] for o in command.get("options", [])}
        data = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": types[k], "value": v} for k, v in options.items()],
        }
        if command.get("guild_id") == str(guild_id):
            data["guild_id"] = str(guild_id)
        return await self._interact(2, data, user, channel_id, guild_id)

    async def click(self, message_id: str, custom_id: str, *, user: dict | None = None) -> dict:
        """Dispatch INTERACTION_CREATE for a click on a button of a message the bot sent."""
        message = self.messages[message_id]
        buttons = [c for row in message.get("components", []) for c in row.get("components", [])]
        assert any(b.get("custom_id") == custom_id for b in buttons), f"no button {custom_id} on {message_id}"
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, data, user, int(message["channel_id"]), message=message)

    async def user_message(
        self, channel_id: int | str, content: str, *, mentions_bot: bool = True, author: dict | None = None
    ) -> dict:
        """Dispatch MESSAGE_CREATE: a user writes in a channel or thread (mentioning the bot by default)."""
        message = self._message(channel_id, content, author=author or self.user)
        message["mentions"] = [self.bot_user] if mentions_bot else []
        message["member"] = {k: v for k, v in self._member(author).items() if k != "user"}
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    def interaction_messages(self, interaction: dict) -> list[dict]:
        """The messages sent with an interaction's token (the response, then the followups), in order."""
        return [self.messages[i] for i in self._interactions[interaction["token"]].messages]

    # -- payloads ------------------------------------------------------------------------------------------

    def _registered(self, name: str, guild_id: int) -> dict:
        scopes = sorted(self.commands, key=lambda scope: scope != guild_id)  # that guild's own commands first
        for scope in scopes:
            for command in self.commands[scope]:
                if command["name"] == name:
                    return command
        msg = f"no command {name!r} was registered; registered: {self.commands}"
        raise AssertionError(msg)

    def _member(self, user: dict | None = None) -> dict:
        return {
            "user": user or self.user,
            "roles": self.member_roles.get((user or self.user)["id"], []),
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": "2248473465835073",
        }

    def _channel(self, channel_id: int) -> dict:
        thread = self.threads.get(str(channel_id))
        if thread is not None:
            return thread
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "help",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    async def _interact(
        self,
        kind: int,
        data: dict,
        user: dict | None,
        channel_id: int | None,
        guild_id: int | None = None,
        message: dict | None = None,
    ) -> dict:
        interaction_id = str(next(self._ids))
        channel_id = channel_id or self.channel_id
        guild_id = guild_id or self.guild_id
        payload = {
            "id": interaction_id,
            "application_id": str(self.app_id),
            "type": kind,
            "token": f"interaction-token-{interaction_id}",
            "version": 1,
            "guild_id": str(guild_id),
            "channel_id": str(channel_id),
            "channel": self._channel(channel_id),
            "member": self._member(user),
            "data": data,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        self._interactions[payload["token"]] = _Interaction(payload)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def _message(self, channel_id: int | str, content: str, author: dict, body: dict | None = None) -> dict:
        body = body or {}
        message = {
            "id": str(next(self._ids)),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0),
            "components": body.get("components", []),
        }
        self.messages[message["id"]] = message
        return message

    def _bot_message(self, channel_id: int | str, body: dict, **extra: Any) -> dict:
        message = self._message(channel_id, body.get("content", ""), self.bot_user, body)
        message.update(extra)
        return message

    # -- REST ----------------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = (
            await request.json()
            if request.can_read_body and request.content_type == "application/json"
            else None
        )
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body = json.loads(form["payload_json"]) if "payload_json" in form else dict(form)
        call = Call(request.method, path, dict(request.query), body)
        self.calls.append(call)
        for lost in self._lost:
            if lost[0] == request.method and lost[1].match(path):
                lost[2] -= 1
                if lost[2] < 0:
                    self._lost.remove(lost)
                    await self._released.wait()
                    call.status = 503
                    return _json({"message": "lost on the way", "code": 0}, 503)
                break
        for failure in self._failures:
            if failure.method == request.method and failure.path.match(path):
                self._failures.remove(failure)
                call.status = failure.status
                return _json(failure.body, failure.status, failure.headers)
        if request.headers.get("Authorization") not in (f"Bot {self.token}", None):
            call.status = 401
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and method == request.method:
                response = handler(body, **match.groupdict())
                if asyncio.iscoroutine(response):
                    response = await response
                call.status = response.status
                return response
        call.status = 404
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _routes(self):
        return (
            ("GET", r"/users/@me", lambda body: _json(self.bot_user)),
            ("GET", r"/oauth2/applications/@me", lambda body: _json(self._application())),
            ("PUT", r"/applications/\d+/commands", lambda body: self._sync(body, None)),
            ("PUT", r"/applications/\d+/guilds/(?P<guild>\d+)/commands", self._sync),
            ("POST", r"/interactions/(?P<interaction>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("POST", r"/webhooks/\d+/(?P<token>[^/]+)", self._followup),
            ("DELETE", r"/webhooks/\d+/(?P<token>[^/]+)/messages/(?P<message>[^/]+)", self._delete),
            ("PATCH", r"/webhooks/\d+/(?P<token>[^/]+)/messages/(?P<message>[^/]+)", self._edit),
            ("POST", r"/channels/(?P<channel>\d+)/messages", self._channel_message),
            ("POST", r"/channels/\d+/typing", lambda body, **_: web.Response(status=204)),
            ("POST", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/threads", self._thread),
        )

    def _application(self) -> dict:
        return {
            "id": str(self.app_id),
            "name": "helpdesk",
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.user,
            "flags": 0,
        }

    def _sync(self, body: list[dict], guild: str | int | None) -> web.Response:
        guild_id = int(guild) if guild is not None else None
        registered = [
            {**command, "id": str(next(self._ids)), "application_id": str(self.app_id), "version": "1"}
            for command in body
        ]
        if guild_id is not None:
            for command in registered:
                command["guild_id"] = str(guild_id)
        self.commands[guild_id] = registered
        return _json(registered)

    def _callback(self, body: dict, interaction: str, token: str) -> web.Response:
        record = self._interactions[token]
        if record.expired is not None:
            return _json({"message": "Unknown interaction", "code": 10062}, 404)
        if self._expiring:
            status = self._expiring.pop(0)
            record.expired = (status, EXPIRED_TOKEN[status])
        kind, data = body["type"], body.get("data") or {}
        response = {"id": interaction, "type": record.payload["type"]}
        result: dict[str, Any] = {"interaction": response}
        if kind in (4, 5):  # a message, or "thinking…" until the first followup
            metadata = {
                "id": interaction,
                "type": record.payload["type"],
                "user": record.payload["member"]["user"],
                "authorizing_integration_owners": record.payload["authorizing_integration_owners"],
            }
            message = self._bot_message(record.payload["channel_id"], data, interaction_metadata=metadata)
            message["flags"] |= 128 if kind == 5 else 0  # LOADING
            record.messages.append(message["id"])
            response |= {
                "response_message_id": message["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & EPHEMERAL),
            }
            if kind == 4:
                result["resource"] = {"type": kind, "message": message}
        return _json(result)

    def _followup(self, body: dict, token: str) -> web.Response:
        record = self._interactions[token]
        if record.expired is not None:
            return _json(record.expired[1], record.expired[0])
        original = self.messages[record.messages[0]] if record.messages else None
        if original is not None and original["flags"] & 128:
            # The first followup after a deferral replaces "thinking…" and keeps its visibility.
            original.update(content=body.get("content", ""), components=body.get("components", []))
            original["flags"] = original["flags"] & ~128
            return _json(original)
        message = self._bot_message(record.payload["channel_id"], body)
        record.messages.append(message["id"])
        return _json(message)

    def _edit(self, body: dict, token: str, message: str) -> web.Response:
        record = self._interactions[token]
        if record.expired is not None:
            return _json(record.expired[1], record.expired[0])
        edited = self.messages[record.messages[0] if message == "@original" else message]
        for part in ("content", "components"):
            if part in body:
                edited[part] = body[part] or ([] if part == "components" else "")
        edited["flags"] &= ~128  # an edit of "thinking…" ends it
        edited["edited_timestamp"] = _now()
        return _json(edited)

    def _delete(self, body: Any, token: str, message: str) -> web.Response:
        record = self._interactions[token]
        if record.expired is not None:
            return _json(record.expired[1], record.expired[0])
        message_id = record.messages[0] if message == "@original" else message
        self.messages.pop(message_id, None)
        record.messages.remove(message_id)
        return web.Response(status=204)

    def _channel_message(self, body: dict, channel: str) -> web.Response:
        extra = {}
        if body.get("message_reference"):
            extra["message_reference"] = body["message_reference"]
        return _json(self._bot_message(channel, body, **extra))

    async def _thread(self, body: dict, channel: str, message: str) -> web.Response:
        thread = {
            "id": message,  # Discord gives a thread started from a message that message's id
            "type": 11,
            "guild_id": str(self.guild_id),
            "parent_id": channel,
            "owner_id": str(self.app_id),
            "name": body["name"],
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": _now(),
                "locked": False,
            },
        }
        self.threads[message] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

    # -- gateway -------------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.add(socket)
        try:
            await socket.send_json({"op": 10, "d": {"heartbeat_interval": 41_250}})
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    break
                message = json.loads(frame.data)
                if message["op"] == 1:
                    await socket.send_json({"op": 11})
                elif message["op"] == 2:
                    await self._ready(socket)
        finally:
            self._sockets.discard(socket)
        return socket

    async def _ready(self, socket: web.WebSocketResponse) -> None:
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": 0},
        }
        await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._sequence), "d": ready}))
        await socket.send_str(
            json.dumps({"op": 0, "t": "GUILD_CREATE", "s": next(self._sequence), "d": self._guild()})
        )
        self.identified.set()

    def _guild(self) -> dict:
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": "2248473465835073",
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(self.guild_id),
            "name": "Acme community",
            "icon": None,
            "owner_id": self.user["id"],
            "roles": [
                everyone,
                *({**everyone, "id": role, "name": f"role {role}"} for role in self.guild_roles),
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [self._channel(self.channel_id)],
            "threads": list(self.threads.values()),
            "members": [],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": _now(),
            "preferred_locale": "en-US",
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
