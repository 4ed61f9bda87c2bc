"""One bot reply in a Slack thread: a placeholder, throttled progress while the answer streams, the answer."""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from connectors.slack_render import APOLOGY, PLACEHOLDER, SlackMessage, render_progress

log = logging.getLogger(__name__)

# chat.update is rate limited (about one call a second per channel): progress is shown at most this often.
PROGRESS_INTERVAL_S = 1.0


class ThreadReply:
    """Posts into a thread, then edits that same message; progress edits never hold up the answer.

    With a `marker`, the placeholder, its progress and an apology carry that message metadata; the answer
    carries its own.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
        marker: dict | None = None,
    ):
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.progress_interval_s = progress_interval_s
        # Metadata every version of the message carries until the answer replaces it (reply_metadata).
        self.marker = marker
        self.ts: str | None = None
        self.streamed = ""
        self._shown_at = 0.0
        self._progress: asyncio.Task | None = None

    async def post(self, message: SlackMessage, metadata: dict | None = None) -> None:
        """A new message in the thread (links never unfurl into previews)."""
        response = await self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=self.thread_ts,
            text=message.text,
            blocks=message.blocks,
            metadata=metadata or self.marker,
            unfurl_links=False,
            unfurl_media=False,
        )
        self.ts = response["ts"]

    async def start(self) -> None:
        """Show the placeholder at once."""
        await self.post(PLACEHOLDER)
        self._shown_at = time.monotonic()

    def resume(self, ts: str) -> None:
        """Write into a message posted before (a placeholder left by a replica that stopped answering)."""
        self.ts = ts

    async def progress(self, delta: str) -> None:
        """Take streamed text; show it when the last edit is old enough and none is in flight."""
        self.streamed += delta
        due = time.monotonic() - self._shown_at >= self.progress_interval_s
        idle = self._progress is None or self._progress.done()
        if self.ts and due and idle:
            self._shown_at = time.monotonic()
            self._progress = asyncio.create_task(self._show_progress(render_progress(self.streamed)))

    async def _show_progress(self, message: SlackMessage) -> None:
        try:
            await self._update(message)
        except SlackApiError as error:
            log.warning("Could not show answer progress in %s: %s", self.channel, error.response.get("error"))

    async def _update(self, message: SlackMessage, metadata: dict | None = None) -> None:
        await self.client.chat_update(
            channel=self.channel,
            ts=self.ts,
            text=message.text,
            blocks=message.blocks,
            metadata=metadata or self.marker,
        )

    async def finish(self, message: SlackMessage, metadata: dict | None = None) -> None:
        """Replace the placeholder with the final message (or post it if no placeholder exists)."""
        if self._progress is not None:
            await self._progress
        if self.ts is None:
            await self.post(message, metadata)
        else:
            await self._update(message, metadata)

    async def apologise(self) -> None:
        """Tell the person something went wrong; if even that fails, it is logged."""
        try:
            await self.finish(APOLOGY)
        except Exception:
            log.exception("Could not post the apology in %s (thread %s)", self.channel, self.thread_ts)
