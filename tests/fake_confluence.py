"""A fake Confluence Cloud REST API v2 on 127.0.0.1: spaces by key, a space's pages with storage bodies."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from aiohttp import web
from fake_platform import FakePlatform, paged

EMAIL = "writer@acme.example"
API_TOKEN = "atl-fake-api-token-0123456789"
SITE = "acme.atlassian.net"

INSTALL_BODY = (
    "<h2>Requirements</h2><ul><li>Linux or macOS</li><li>Python 3.11</li></ul>"
    '<ac:structured-macro ac:name="warning" ac:schema-version="1"><ac:rich-text-body>'
    "<p>Stop the old agent before upgrading.</p></ac:rich-text-body></ac:structured-macro>"
    '<h2>Install</h2><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash'
    "</ac:parameter><ac:plain-text-body><![CDATA[pip install acme-agent && acme-agent --start]]>"
    "</ac:plain-text-body></ac:structured-macro>"
    "<table><tbody><tr><th>Platform</th><th>Service</th></tr><tr><td>Linux</td><td>systemd</td></tr>"
    "</tbody></table>"
)


class FakeConfluence(FakePlatform):
    """Space HELP: Home › Agent › Installing the agent, Home › Agent › Uninstalling, Home › FAQ; space OPS."""

    def __init__(self) -> None:
        super().__init__()
        self.spaces = {"HELP": "9001", "OPS": "9002"}
        self.pages: dict[str, dict] = {}
        self.add("1", "Home", "<p>Welcome to the ACME help space for all customers.</p>", None)
        self.add("2", "Agent", "<p>Everything about the ACME agent on your servers.</p>", "1")
        self.add("3", "Installing the agent", INSTALL_BODY, "2")
        self.add("4", "Uninstalling the agent", "<p>Run acme-agent --uninstall and&nbsp;reboot.</p>", "2")
        self.add("5", "FAQ", "<p>The agent uses 50&nbsp;MB of memory.</p>", "1")

    def add(self, page_id: str, title: str, body: str, parent: str | None, space: str = "HELP") -> None:
        self.pages[page_id] = {
            "id": page_id,
            "status": "current",
            "title": title,
            "spaceId": self.spaces[space],
            "parentId": parent,
            "parentType": "page" if parent else None,
            "version": {"number": 1, "createdAt": "2026-03-01T09:00:00.000Z"},
            "body": {"storage": {"value": body, "representation": "storage"}},
            "_links": {"webui": f"/spaces/{space}/pages/{page_id}/{title.replace(' ', '+')}"},
        }

    def edit(self, page_id: str, body: str) -> None:
        page = self.pages[page_id]
        page["body"]["storage"]["value"] = body
        number = page["version"]["number"] + 1
        page["version"] = {"number": number, "createdAt": f"2026-03-0{number}T09:00:00.000Z"}

    def authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/wiki/api/v2/spaces", self._spaces)
        app.router.add_get("/wiki/api/v2/spaces/{space_id}/pages", self._space_pages)

    async def _spaces(self, request: web.Request) -> web.Response:
        keys = request.query.get("keys", "").split(",")
        found = [{"id": self.spaces[k], "key": k, "name": k.title()} for k in keys if k in self.spaces]
        return web.json_response({"results": found, "_links": {"base": f"https://{SITE}/wiki"}})

    async def _space_pages(self, request: web.Request) -> web.Response:
        space_id = request.match_info["space_id"]
        statuses = request.query.get("status", "current,archived").split(",")
        with_body = request.query.get("body-format") == "storage"
        pages = [
            {**page} if with_body else {k: v for k, v in page.items() if k != "body"}
            for page in self.pages.values()
            if page["spaceId"] == space_id and page["status"] in statuses
        ]
        limit = min(int(request.query.get("limit", "25")), self.page_limit)
        results, following = paged(pages, int(request.query.get("cursor", "0")), limit)
        links = {"base": f"https://{SITE}/wiki"}
        if following is not None:
            query = {**request.query, "cursor": following}
            links["next"] = f"{request.path}?{urlencode(query)}"
        return web.json_response({"results": results, "_links": links})
