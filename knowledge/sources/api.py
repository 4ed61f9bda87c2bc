"""JSON APIs of knowledge-base platforms: one client per sync, Retry-After waited out, pages followed to the end.

ApiError                  a request that got no usable answer; the item waits for the next sync
├── AuthenticationFailed  HTTP 401: the credentials are wrong or revoked; the whole source stops
└── NotFound              HTTP 404 or 410: the item is gone, or no longer visible to the account
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from knowledge.sources.base import PlatformAccount, SourceOptions

# The longest Retry-After a request waits out. Zendesk, Confluence and Notion ask for a few seconds up to a
# minute when rate limiting; a longer wait would stall the whole sync, so the item waits for the next one.
MAX_RETRY_WAIT_S = 60.0
# Attempts per request while the platform answers 429 or 503: three waits, then the item is skipped.
MAX_ATTEMPTS = 4
# The wait after a 429 or 503 without Retry-After, doubled at each further attempt.
FALLBACK_WAIT_S = 1.0
_BUSY = {429, 503}
_GONE = {404, 410}

# The next request of a listing: (path or URL, query parameters, JSON body), or None after the last page.
NextPage = Callable[[dict], tuple[str, dict | None, dict | None] | None]


class ApiError(Exception):
    """A platform request without a usable answer; `status` is the HTTP status (0 when none came)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class AuthenticationFailed(ApiError):
    """The platform rejected the credentials (HTTP 401)."""


class NotFound(ApiError):
    """The item does not exist, or the account may no longer see it (HTTP 404 or 410)."""


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time as the platforms write it ('2026-03-01T10:00:00Z'), or None."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def retry_after_s(response: httpx.Response, attempt: int) -> float:
    """Seconds the platform asks us to wait (Retry-After as seconds or a date), else a doubling fallback."""
    header = response.headers.get("retry-after", "").strip()
    if header.replace(".", "", 1).isdigit():
        return float(header)
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return FALLBACK_WAIT_S * 2 ** (attempt - 1)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def basic_auth(
    account: PlatformAccount, credential_settings: str, anonymous: str, *, user_suffix: str = ""
) -> httpx.BasicAuth | None:
    """HTTP Basic authentication as the account's user and token, or none when neither is set."""
    if bool(account.user) != bool(account.token):
        msg = f"Set both {credential_settings} (or neither, {anonymous})"
        raise ValueError(msg)
    return httpx.BasicAuth(f"{account.user}{user_suffix}", account.token or "") if account.token else None


class JsonApi:
    """An httpx client for one platform: its base URL and authentication, bounded concurrency, retries."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        options: SourceOptions,
        credential_settings: str,
        *,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.credential_settings = credential_settings
        self._client = httpx.AsyncClient(
            timeout=options.web_timeout_s,
            auth=auth,
            headers={"User-Agent": options.user_agent, "Accept": "application/json", **(headers or {})},
            transport=transport,
        )
        self._limit = asyncio.Semaphore(options.web_concurrency)

    async def __aenter__(self) -> JsonApi:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.aclose()

    def url(self, path_or_url: str) -> str:
        """A path under the base URL; a platform's absolute link keeps its path but goes to the base URL's host
        (a proxy or a test server)."""
        if not path_or_url.startswith(("http://", "https://")):
            return self.base_url + path_or_url
        link = urlsplit(path_or_url)
        if link.netloc == urlsplit(self.base_url).netloc:
            return path_or_url
        return self.base_url + link.path + (f"?{link.query}" if link.query else "")

    async def request(
        self, method: str, path: str, *, params: dict | None = None, json: dict | None = None
    ) -> dict:
        """The JSON object the platform answers, after waiting out 429 and 503 as it asks (within bounds)."""
        url = self.url(path)
        where = urlsplit(url).path
        for attempt in range(1, MAX_ATTEMPTS + 1):
            async with self._limit:
                try:
                    response = await self._client.request(method, url, params=params, json=json)
                except httpx.TimeoutException:
                    msg = f"{self.platform} did not answer {where} in time (HELPDESK_WEB_TIMEOUT_S)"
                    raise ApiError(msg) from None
                except httpx.HTTPError as error:
                    msg = f"could not reach {self.platform} for {where} ({type(error).__name__})"
                    raise ApiError(msg) from None
            if response.status_code not in _BUSY:
                return self._answer(response, where)
            wait = retry_after_s(response, attempt)
            if wait > MAX_RETRY_WAIT_S:
                msg = (
                    f"{self.platform} is busy (HTTP {response.status_code}) and asks to wait {wait:.0f} s, "
                    f"over the {MAX_RETRY_WAIT_S:.0f} s limit; will retry at the next sync"
                )
                raise ApiError(msg, response.status_code)
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(wait)
        msg = f"{self.platform} stayed busy (HTTP {response.status_code}) for {where}; will retry at the next sync"
        raise ApiError(msg, response.status_code)

    def _answer(self, response: httpx.Response, where: str) -> dict:
        status = response.status_code
        if status == 401:
            msg = f"{self.platform} rejected the credentials (HTTP 401): check {self.credential_settings}"
            raise AuthenticationFailed(msg, status)
        if status in _GONE:
            raise NotFound(
                f"HTTP {status}: {where} is not on {self.platform} (deleted, or not shared)", status
            )
        if status == 403:
            msg = f"HTTP 403: the {self.platform} account may not read {where}; grant it access to read it"
            raise ApiError(msg, status)
        if status >= 400:
            raise ApiError(
                f"HTTP {status} from {self.platform} for {where}; will retry at the next sync", status
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            msg = f"{self.platform} answered {where} with something other than a JSON object"
            raise ApiError(msg, status)
        return data

    async def pages(
        self,
        method: str,
        path: str,
        next_page: NextPage,
        *,
        params: dict | None = None,
        json: dict | None = None,
    ) -> AsyncIterator[dict]:
        """Every page of a listing, following the platform's cursor or next link until the last one."""
        request: tuple[str, dict | None, dict | None] | None = (path, params, json)
        seen: set[str] = set()
        while request is not None:
            marker = repr(request)
            if marker in seen:
                msg = (
                    f"{self.platform} returned the same page of {urlsplit(path).path} twice; listing stopped"
                )
                raise ApiError(msg)
            seen.add(marker)
            page = await self.request(method, request[0], params=request[1], json=request[2])
            yield page
            request = next_page(page)
