"""The Slack Events API endpoint's gate: cheap checks first, then the signature, then a request Bolt can read.

Nothing of a request body is ever logged: rejections are counted and summed up in one line a minute at most.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

# aiohttp's default request limit, which the endpoint always had; Slack's own payloads are far smaller.
MAX_BODY_BYTES = 1024 * 1024
# Slack's replay window for a signed request (the same five minutes slack_sdk's SignatureVerifier applies).
MAX_SIGNATURE_AGE_S = 5 * 60
# One warning line a minute is enough to notice a wrong SLACK_SIGNING_SECRET and cannot flood the log.
REJECTION_REPORT_INTERVAL_S = 60.0


class SlackRequestGate:
    """Turns an HTTP request into a verified AsyncBoltRequest, or into the response that rejects it.

    Oversized and unsigned requests (no or malformed signature headers, an expired timestamp) are answered
    before their body is read; a body is read only to check its signature, and parsed only once it passed.
    """

    def __init__(self, signing_secret: str):
        self.verifier = SignatureVerifier(signing_secret)
        self.rejected: Counter[str] = Counter()
        self._reported_at = -REJECTION_REPORT_INTERVAL_S

    async def admit(self, request: web.Request) -> AsyncBoltRequest | web.Response:
        """The request as Bolt's, when it is signed by Slack and well formed; else a 401, 400 or 413."""
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return self._reject(413, "too large")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and signature.startswith("v0=")):
            return self._reject(401, "unsigned")
        if abs(time.time() - int(timestamp)) > MAX_SIGNATURE_AGE_S:
            return self._reject(401, "expired signature")
        body = await _read_at_most(request, MAX_BODY_BYTES)
        if body is None:
            return self._reject(413, "too large")
        try:
            text = body.decode()
        except UnicodeDecodeError:  # Slack signs UTF-8 text: these bytes cannot carry its signature
            return self._reject(401, "bad signature")
        if not self.verifier.is_valid(text, timestamp, signature):
            return self._reject(401, "bad signature")
        try:
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)
        except (ValueError, TypeError, AttributeError, KeyError):  # not JSON or a form, not a Slack payload
            return self._reject(400, "malformed")
        if not isinstance(bolt_request.body, dict):
            return self._reject(400, "malformed")
        return bolt_request

    def _reject(self, status: int, reason: str) -> web.Response:
        self.rejected[reason] += 1
        now = time.monotonic()
        if now - self._reported_at >= REJECTION_REPORT_INTERVAL_S:
            counts = ", ".join(f"{count} {why}" for why, count in self.rejected.items())
            log.warning(
                "Slack: rejected requests since the last report: %s (if Slack's own events are among them, "
                "check SLACK_SIGNING_SECRET)",
                counts,
            )
            self.rejected.clear()
            self._reported_at = now
        response = web.json_response({"ok": False, "error": reason}, status=status)
        response.force_close()  # a rejected client gets no kept-alive connection to send more on
        return response


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes (a chunked body has no Content-Length)."""
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
