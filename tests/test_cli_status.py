"""The command line in-process with fake embeddings: `status`, sync errors, and the `--cron` loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal

from conftest import CountingEmbeddings, read_only, write
from typer.testing import CliRunner

from bot.settings import Settings
from connectors.cli import _sync_forever, app
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.sources import FileSource, SourceOptions


class BrokenModel(CountingEmbeddings):
    """An embedding model that crashes mid-sync."""

    def embed_documents(self, texts):
        msg = "the embedding model crashed"
        raise RuntimeError(msg)


async def _status(data_dir, *args: str):
    """`helpdesk status`, run as a person would: outside this test's event loop."""
    env = {"HELPDESK_DATA_DIR": str(data_dir)}
    result = await asyncio.to_thread(CliRunner().invoke, app, ["status", *args], env=env)
    return result.exit_code, result.stdout


async def test_status_shows_the_served_version_its_health_counts_and_the_last_syncs(tmp_path):
    data_dir = tmp_path / "data"
    assert (await _status(data_dir, "--json"))[0] == 1
    assert json.loads((await _status(data_dir, "--json"))[1])["state"] == "empty"
    source = FileSource(tmp_path / "kb", SourceOptions())
    write(tmp_path / "kb/a.md", "# Apples\n\nApples grow on trees.\n\n## Picking\n\nPick them in autumn.\n")
    kb = KnowledgeBase(data_dir, CountingEmbeddings(size=32), Chunker(400, 50), "fake")
    await kb.sync([source])
    write(tmp_path / "kb/b.md", "# Bananas\n\nBananas grow in bunches.\n")
    broken = KnowledgeBase(data_dir, BrokenModel(size=32), Chunker(400, 50), "fake")
    with contextlib.suppress(RuntimeError):
        await broken.sync([source])
    await kb.sync([source])

    code, output = await _status(data_dir, "--json")
    report = json.loads(output)
    assert code == 0 and report["state"] == "ok" and report["served"] == "v000002"
    assert (report["documents"], report["passages"]) == (2, 3)
    assert [entry["outcome"] for entry in report["last_syncs"]] == ["ok", "failed", "ok"]
    assert report["last_syncs"][1]["error"] == "the embedding model crashed"
    assert report["last_syncs"][0]["added"] == 1 and report["last_syncs"][0]["version"] == "v000002"

    vectors = data_dir / "index" / "v000002" / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:-200] + bytes(200))
    code, output = await _status(data_dir)
    assert code == 1
    assert "degraded" in output and "v000001" in output and "documents" in output
    assert "v000002 is damaged: vectors.faiss does not match its checksum" in " ".join(output.split())
    assert "the embedding model crashed" in output


async def test_sync_into_a_read_only_data_directory_prints_one_line(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with read_only(data_dir):
        result = CliRunner().invoke(app, ["sync", str(tmp_path)], env={"HELPDESK_DATA_DIR": str(data_dir)})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: Cannot write the index in"), result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


async def test_cron_logs_a_failed_run_and_the_next_run_still_happens(tmp_path, caplog):
    write(tmp_path / "kb/a.md", "# Apples\n\nApples grow on trees.\n")
    blocker = write(tmp_path / "blocker", "a file where the data directory should be")
    settings = Settings(data_dir=blocker / "data", sources=[str(tmp_path / "kb")])
    kb = KnowledgeBase(settings.data_dir, CountingEmbeddings(size=32), Chunker(400, 50), "fake")
    with caplog.at_level(logging.WARNING):
        loop = asyncio.create_task(_sync_forever(settings, [], "* * * * * *", kb))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if "Scheduled sync failed" in caplog.text:
                break
        assert not loop.done(), loop  # the first run failed, and the loop goes on
        blocker.unlink()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if kb.store.pointer() is not None:
                break
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C
        await asyncio.wait_for(loop, 10)
    assert kb.store.pointer() == "v000001"
    failure = next(r for r in caplog.records if "Scheduled sync failed" in r.getMessage())
    assert failure.exc_info is None and "Cannot write the index" in failure.getMessage()
    assert "The next run will try again at" in failure.getMessage()
