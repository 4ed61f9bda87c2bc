"""A fake Notion API on 127.0.0.1: databases queried, pages retrieved, block children listed, cursors."""

from __future__ import annotations

import uuid

from aiohttp import web
from fake_platform import FakePlatform, paged

TOKEN = "ntn_fake_integration_secret_0123456789"
VERSION = "2022-06-28"


def notion_id(number: int) -> str:
    return str(uuid.UUID(int=number))


def text(content: str, **annotations) -> list[dict]:
    return [{"type": "text", "plain_text": content, "text": {"content": content}, "annotations": annotations}]


def block(kind: str, content: str = "", children: list[dict] | None = None, **value) -> dict:
    return {"type": kind, kind: {"rich_text": text(content), **value}, "children": children or []}


class FakeNotion(FakePlatform):
    """Database 'Help articles' (two pages) and page 'Handbook' with child pages 'Onboarding' › 'Laptops'."""

    DATABASE = notion_id(100)
    HANDBOOK = notion_id(200)
    ONBOARDING = notion_id(210)
    LAPTOPS = notion_id(211)

    def __init__(self) -> None:
        super().__init__()
        self.databases = {
            self.DATABASE: {"title": "Help articles", "pages": [notion_id(101), notion_id(102)]}
        }
        self.pages: dict[str, dict] = {}
        self.blocks: dict[str, dict] = {}
        self.add_page(
            notion_id(101),
            "Exporting data",
            [
                block("heading_2", "From the app"),
                block("numbered_list_item", "Open Settings"),
                block("numbered_list_item", "Choose Export"),
                block("to_do", "Check the CSV", checked=True),
                block("code", "acme export --format csv", language="bash"),
                block(
                    "callout", "Exports older than 30 days are deleted.", icon={"type": "emoji", "emoji": "⚠️"}
                ),
                block("toggle", "Which formats?", [block("paragraph", "CSV and JSON are both supported.")]),
                {
                    "type": "table",
                    "table": {"table_width": 2, "has_column_header": True},
                    "children": [
                        {
                            "type": "table_row",
                            "table_row": {"cells": [text("Plan"), text("Exports per day")]},
                        },
                        {"type": "table_row", "table_row": {"cells": [text("Team"), text("10")]}},
                    ],
                },
            ],
        )
        self.add_page(
            notion_id(102),
            "Deleting an account",
            [block("paragraph", "Owners delete the account under Settings.")],
        )
        self.add_page(
            self.HANDBOOK,
            "Handbook",
            [
                block("paragraph", "How the support team works, from first day to last."),
                {"type": "child_page", "child_page": {"title": "Onboarding"}, "id": self.ONBOARDING},
            ],
        )
        self.add_page(
            self.ONBOARDING,
            "Onboarding",
            [block("paragraph", "New agents shadow a senior agent for a week.")]
            + [block("bulleted_list_item", f"Checklist step {n}") for n in range(1, 6)]
            + [{"type": "child_page", "child_page": {"title": "Laptops"}, "id": self.LAPTOPS}],
        )
        self.add_page(
            self.LAPTOPS, "Laptops", [block("paragraph", "Laptops are ordered through the IT portal.")]
        )

    def _store(self, parent: str, children: list[dict]) -> list[str]:
        ids = []
        for child in children:
            child = {**child}
            child_id = child.pop("id", None) or notion_id(len(self.blocks) + 10_000)
            nested = child.pop("children", [])
            ids.append(child_id)
            has_children = bool(nested) or child["type"] == "child_page"  # a child page's blocks are its own
            self.blocks[child_id] = {"object": "block", "id": child_id, **child, "has_children": has_children}
            self.blocks[child_id]["child_ids"] = self._store(child_id, nested)
        return ids

    def add_page(self, page_id: str, title: str, blocks: list[dict]) -> None:
        self.pages[page_id] = {
            "object": "page",
            "id": page_id,
            "url": f"https://www.notion.so/{title.replace(' ', '-')}-{page_id.replace('-', '')}",
            "last_edited_time": "2026-03-01T09:00:00.000Z",
            "archived": False,
            "in_trash": False,
            "properties": {"Name": {"id": "title", "type": "title", "title": text(title)}},
            "child_ids": self._store(page_id, blocks),
        }

    def edit(self, page_id: str, blocks: list[dict], edited: str = "2026-03-02T09:00:00.000Z") -> None:
        self.pages[page_id].update(child_ids=self._store(page_id, blocks), last_edited_time=edited)

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def error(self, status: int, message: str) -> web.Response:
        codes = {401: "unauthorized", 404: "object_not_found", 429: "rate_limited"}
        code = codes.get(status, "internal_server_error")
        return web.json_response(
            {"object": "error", "status": status, "code": code, "message": message}, status=status
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/databases/{id}", self._database)
        app.router.add_post("/v1/databases/{id}/query", self._query)
        app.router.add_get("/v1/pages/{id}", self._page)
        app.router.add_get("/v1/blocks/{id}/children", self._children)

    @staticmethod
    def _listing(results: list[dict], following: int | None) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "results": results,
                "next_cursor": str(following) if following is not None else None,
                "has_more": following is not None,
            }
        )

    def _checked(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Notion-Version") != VERSION:
            return web.json_response(
                {"object": "error", "status": 400, "code": "missing_version"}, status=400
            )
        return None

    @staticmethod
    def _public(record: dict) -> dict:
        return {k: v for k, v in record.items() if k != "child_ids"}

    async def _database(self, request: web.Request) -> web.Response:
        database_id = request.match_info["id"]
        if database_id in self.pages:
            return web.json_response(
                {"object": "error", "status": 400, "code": "validation_error"}, status=400
            )
        if database_id not in self.databases:
            return self.error(404, "Could not find database")
        title = self.databases[database_id]["title"]
        return self._checked(request) or web.json_response(
            {"object": "database", "id": database_id, "title": text(title)}
        )

    async def _query(self, request: web.Request) -> web.Response:
        body = await request.json()
        rows = [
            self._public(self.pages[i])
            for i in self.databases[request.match_info["id"]]["pages"]
            if i in self.pages and not self.pages[i]["in_trash"]
        ]
        limit = min(int(body.get("page_size", 100)), self.page_limit)
        results, following = paged(rows, int(body.get("start_cursor") or 0), limit)
        return self._checked(request) or self._listing(results, following)

    async def _page(self, request: web.Request) -> web.Response:
        page = self.pages.get(request.match_info["id"])
        if page is None:
            return self.error(404, "Could not find page")
        return self._checked(request) or web.json_response(self._public(page))

    async def _children(self, request: web.Request) -> web.Response:
        parent = self.pages.get(request.match_info["id"]) or self.blocks.get(request.match_info["id"])
        if parent is None:
            return self.error(404, "Could not find block")
        children = [self._public(self.blocks[i]) for i in parent["child_ids"]]
        limit = min(int(request.query.get("page_size", "100")), self.page_limit)
        results, following = paged(children, int(request.query.get("start_cursor") or 0), limit)
        return self._checked(request) or self._listing(results, following)
