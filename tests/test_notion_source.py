"""Notion sources synced from a fake Notion API with the real httpx client: databases and page trees."""

from __future__ import annotations

import pytest
from fake_notion import TOKEN, FakeNotion, block, notion_id

from bot.runtime import open_sources
from bot.settings import Settings


async def _sync(kb, notion: FakeNotion, root: str):
    settings = Settings(notion_api_url=notion.url, notion_token=TOKEN)
    return await kb.sync(open_sources(settings, [f"notion://{root.replace('-', '')}"]))


def _passages(version, page_id: str) -> list:
    return [c for c in version.chunks if c.doc_id == f"pages/{page_id}" and c.kind == "passage"]


async def test_a_database_becomes_markdown_documents_with_links(make_kb):
    async with FakeNotion() as notion:
        kb = make_kb()
        report = await _sync(kb, notion, FakeNotion.DATABASE)
        assert len(report.added) == 2 and report.skipped == []
        assert all(c.authorization == f"Bearer {TOKEN}" for c in notion.calls)
        assert len(notion.calls_to(f"/v1/databases/{FakeNotion.DATABASE}/query")) == 1
    version = await kb.current()
    [export_id] = [k.rsplit("/", 1)[-1] for k in report.added if "0065" in k]
    passages = _passages(version, export_id)
    assert passages[0].title == "Exporting data"
    assert passages[0].source == f"https://www.notion.so/Exporting-data-{export_id.replace('-', '')}"
    assert passages[0].headings[:2] == ["Help articles", "From the app"]
    text = "\n".join(c.text for c in passages)
    for expected in (
        "1. Open Settings",
        "2. Choose Export",
        "- [x] Check the CSV",
        "```bash\nacme export --format csv\n```",
        "> ⚠️ Exports older than 30 days are deleted.",
        "CSV and JSON are both supported.",  # inside the toggle
        "10",  # the table row
    ):
        assert expected in text, expected


async def test_a_page_tree_follows_child_pages_and_block_cursors(make_kb):
    async with FakeNotion() as notion:
        kb = make_kb()
        report = await _sync(kb, notion, FakeNotion.HANDBOOK)
        assert len(report.added) == 3
        onboarding_blocks = notion.calls_to(f"/v1/blocks/{FakeNotion.ONBOARDING}/children")
        assert len(onboarding_blocks) >= 4  # seven blocks, two per page: every cursor followed
    version = await kb.current()
    [laptops] = _passages(version, FakeNotion.LAPTOPS)
    assert laptops.headings == ["Handbook", "Onboarding"]
    onboarding = "\n".join(c.text for c in _passages(version, FakeNotion.ONBOARDING))
    assert "- Checklist step 5" in onboarding


async def test_unchanged_pages_are_not_read_again(make_kb, fake_embeddings):
    async with FakeNotion() as notion:
        kb = make_kb()
        await _sync(kb, notion, FakeNotion.DATABASE)
        before, calls = fake_embeddings.embedded, len(notion.calls)
        again = await _sync(kb, notion, FakeNotion.DATABASE)
        assert (again.unchanged, again.chunks_embedded, fake_embeddings.embedded) == (2, 0, before)
        assert [c.path for c in notion.calls[calls:]] == [
            f"/v1/databases/{FakeNotion.DATABASE}",
            f"/v1/databases/{FakeNotion.DATABASE}/query",
        ]  # last_edited_time unchanged: no page's blocks are read


async def test_page_tree_edits_and_deletions_follow(make_kb, fake_embeddings):
    async with FakeNotion() as notion:
        kb = make_kb()
        await _sync(kb, notion, FakeNotion.HANDBOOK)
        before = fake_embeddings.embedded
        again = await _sync(kb, notion, FakeNotion.HANDBOOK)
        assert (again.unchanged, again.chunks_embedded, fake_embeddings.embedded) == (3, 0, before)

        notion.edit(FakeNotion.LAPTOPS, [block("paragraph", "Laptops are ordered by your manager.")])
        edited = await _sync(kb, notion, FakeNotion.HANDBOOK)
        assert [k.rsplit("/", 1)[-1] for k in edited.updated] == [FakeNotion.LAPTOPS]
        assert edited.chunks_embedded == 2

        notion.pages[FakeNotion.LAPTOPS]["in_trash"] = True
        notion.pages[FakeNotion.LAPTOPS]["archived"] = True
        gone = await _sync(kb, notion, FakeNotion.HANDBOOK)
        assert [k.rsplit("/", 1)[-1] for k in gone.deleted] == [FakeNotion.LAPTOPS]


async def test_rate_limits_are_waited_out_and_a_rejected_token_keeps_every_page(make_kb):
    async with FakeNotion() as notion:
        kb = make_kb()
        notion.busy[f"/v1/pages/{FakeNotion.ONBOARDING}"] = ["1"]
        assert len((await _sync(kb, notion, FakeNotion.HANDBOOK)).added) == 3  # the 429 waited out

        notion.reject_credentials = True
        report = await _sync(kb, notion, FakeNotion.HANDBOOK)
    assert report.deleted == [] and report.unchanged == 3
    assert "HELPDESK_NOTION_TOKEN" in report.skipped[0].reason and TOKEN not in report.skipped[0].reason


async def test_a_page_that_fails_to_load_keeps_its_last_good_version(make_kb):
    async with FakeNotion() as notion:
        kb = make_kb()
        await _sync(kb, notion, FakeNotion.DATABASE)
        failing_page = notion_id(102)
        notion.edit(failing_page, [block("paragraph", "Changed.")])
        notion.failing[f"/v1/blocks/{failing_page}/children"] = 500
        report = await _sync(kb, notion, FakeNotion.DATABASE)
        assert report.deleted == report.updated == [] and report.unchanged == 2
        [skipped] = report.skipped
        assert skipped.where == failing_page and "HTTP 500" in skipped.reason
        assert "kept the last good version" in skipped.reason


async def test_an_unshared_id_says_how_to_share_it(make_kb):
    async with FakeNotion() as notion:
        report = await _sync(make_kb(), notion, "ab" * 16)
    assert "Connections" in report.skipped[0].reason


def test_a_token_is_required_and_ids_are_checked():
    with pytest.raises(ValueError, match="HELPDESK_NOTION_TOKEN"):
        open_sources(Settings(), ["notion://" + "ab" * 16])
    with pytest.raises(ValueError, match="notion://ID"):
        open_sources(Settings(notion_token="x"), ["notion://not-an-id"])
