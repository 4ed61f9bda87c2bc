"""`helpdesk sync` of Zendesk, Confluence and Notion sources, run as a user runs it, against the fakes."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import fake_confluence
import fake_notion
import fake_zendesk
import pytest
from fake_confluence import FakeConfluence
from fake_notion import FakeNotion
from fake_zendesk import FakeZendesk

pytestmark = pytest.mark.slow


async def _helpdesk(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connectors", *args,
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_sync_of_three_platforms_then_nothing_then_an_edit_then_a_rejected_token(tmp_path):
    async with FakeZendesk() as zendesk, FakeConfluence() as confluence, FakeNotion() as notion:
        env = {
            "HELPDESK_DATA_DIR": str(tmp_path / "data"),
            "HELPDESK_LOG_LEVEL": "WARNING",
            "HELPDESK_SOURCES": (
                f"zendesk://acme?locale=en-us, confluence://{fake_confluence.SITE}/HELP, "
                f"notion://{FakeNotion.DATABASE}"
            ),
            "HELPDESK_ZENDESK_URL": zendesk.url,
            "HELPDESK_ZENDESK_EMAIL": fake_zendesk.EMAIL,
            "HELPDESK_ZENDESK_API_TOKEN": fake_zendesk.API_TOKEN,
            "HELPDESK_CONFLUENCE_URL": confluence.url,
            "HELPDESK_CONFLUENCE_EMAIL": fake_confluence.EMAIL,
            "HELPDESK_CONFLUENCE_API_TOKEN": fake_confluence.API_TOKEN,
            "HELPDESK_NOTION_API_URL": notion.url,
            "HELPDESK_NOTION_TOKEN": fake_notion.TOKEN,
        }
        code, out, err = await _helpdesk("sync", "--json", env=env)
        assert code == 0, err
        first = json.loads(out)
        assert (first["added"], first["skipped"]) == (4 + 5 + 2, [])

        code, out, _ = await _helpdesk("sync", "--json", env=env)
        again = json.loads(out)
        assert (again["chunks_embedded"], again["unchanged"], again["version"]) == (0, 11, first["version"])

        zendesk.edit(1001, "<p>Refunds are issued within 30 days to the original card.</p>")
        code, out, _ = await _helpdesk("sync", "--json", env=env)
        edited = json.loads(out)
        assert (edited["updated"], edited["added"], edited["deleted"]) == (1, 0, 0)

        code, out, _ = await _helpdesk("search", "refund days", "--json", env=env)
        best = json.loads(out)["results"][0]
        assert best["source"] == "https://acme.zendesk.com/hc/en-us/articles/1001"
        assert best["heading"] == "Billing > Payments" and "30 days" in best["text"]

        notion.reject_credentials = True
        code, out, err = await _helpdesk("sync", env=env)
        assert code == 0
        printed = " ".join(err.split())
        assert "HELPDESK_NOTION_TOKEN" in printed and fake_notion.TOKEN not in printed + out
        code, out, _ = await _helpdesk("sync", "--json", env=env)
        assert json.loads(out)["deleted"] == 0 and json.loads(out)["documents_total"] == 11
