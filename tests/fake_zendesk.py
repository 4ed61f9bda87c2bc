"""A fake Zendesk Help Center API on 127.0.0.1: categories, sections, articles, cursor pagination, Basic auth."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web
from fake_platform import FakePlatform, paged

EMAIL = "agent@acme.example"
API_TOKEN = "zd-fake-api-token-0123456789"
# Links the real Zendesk returns point at its own host; the source must send them to its base URL instead.
PUBLIC_HOST = "https://acme.zendesk.com"


class FakeZendesk(FakePlatform):
    """The help center of 'acme': Billing › Payments and Account › Sign-in › Single sign-on."""

    def __init__(self, *, public: bool = False) -> None:
        super().__init__()
        self.public = public
        self.clock = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        self.categories = {10: "Billing", 20: "Account"}
        self.sections = {
            100: {"name": "Payments", "category_id": 10},
            200: {"name": "Sign-in", "category_id": 20},
            210: {"name": "Single sign-on", "category_id": 20, "parent_section_id": 200},
        }
        self.articles: dict[int, dict] = {}
        self.add(1001, "Refund policy", "<p>Refunds are issued within 14 days to the original card.</p>", 100)
        self.add(
            1002,
            "Updating your card",
            "<h2>Steps</h2><ol><li>Open Billing settings</li><li>Choose Update card</li></ol>"
            "<table><tr><th>Card</th><th>Accepted</th></tr><tr><td>Visa</td><td>yes</td></tr></table>",
            100,
        )
        self.add(
            2001, "Resetting your password", "<p>Use the Forgot password link on the sign-in page.</p>", 200
        )
        self.add(2101, "Setting up SAML", "<p>Upload the IdP metadata XML under Security, SAML.</p>", 210)
        self.add(2002, "Passkeys (draft)", "<p>Passkeys are coming soon.</p>", 200, draft=True)

    def tick(self) -> str:
        self.clock += timedelta(minutes=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def add(self, article_id: int, title: str, body: str, section_id: int, *, draft: bool = False) -> None:
        self.articles[article_id] = {
            "id": article_id,
            "title": title,
            "body": body,
            "section_id": section_id,
            "draft": draft,
            "updated_at": self.tick(),
        }

    def edit(self, article_id: int, body: str) -> None:
        self.articles[article_id].update(body=body, updated_at=self.tick())

    @staticmethod
    def link(locale: str, article_id: int) -> str:
        return f"{PUBLIC_HOST}/hc/{locale}/articles/{article_id}"

    def authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{EMAIL}/token:{API_TOKEN}".encode()).decode()
        given = request.headers.get("Authorization")
        return given == f"Basic {expected}" or (self.public and given is None)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/help_center/{locale}/{kind}.json", self._list)
        app.router.add_get("/api/v2/help_center/{kind}.json", self._list)  # the default locale

    def _records(self, kind: str, locale: str) -> list[dict]:
        if kind == "categories":
            return [{"id": i, "name": name, "locale": locale} for i, name in self.categories.items()]
        if kind == "sections":
            return [{"id": i, "locale": locale, **section} for i, section in self.sections.items()]
        return [
            {
                **article,
                "name": article["title"],
                "locale": locale,
                "html_url": self.link(locale, article["id"]),
            }
            for article in self.articles.values()
        ]

    async def _list(self, request: web.Request) -> web.Response:
        locale, kind = request.match_info.get("locale", "en-us"), request.match_info["kind"]
        if kind not in ("categories", "sections", "articles"):
            return self.error(404, "InvalidEndpoint")
        size = min(int(request.query.get("page[size]", "30")), self.page_limit)
        offset = int(request.query.get("page[after]", "0"))
        records, following = paged(self._records(kind, locale), offset, size)
        query = urlencode({"page[size]": size, "page[after]": following})
        return web.json_response(
            {
                kind: records,
                "meta": {"has_more": following is not None, "after_cursor": str(following or "")},
                "links": {"next": f"{PUBLIC_HOST}{request.path}?{query}" if following is not None else None},
            }
        )
