"""Damaged index versions: never served, never synced on; the next sync rebuilds; legacy versions still load."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import write

from knowledge.integrity import CHECKSUMS, IndexDamaged
from knowledge.sources import FileSource, SourceOptions


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_200_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(200)
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated vectors": lambda v: _truncate(v / "vectors.faiss"),
    "zeroed vectors": lambda v: _zero_200_bytes(v / "vectors.faiss"),
    "truncated chunks": lambda v: _truncate(v / "chunks.jsonl"),
    "broken manifest": lambda v: (v / "manifest.json").write_text('{"format": 2, "documents": {'),
    "deleted keyword file": lambda v: next((v / "keywords").iterdir()).unlink(),
    "deleted checksums": lambda v: (v / CHECKSUMS).unlink(),
}


async def _two_versions(tmp_path, kb):
    write(tmp_path / "kb/a.md", "# Apples\n\nApples grow on trees in the orchard.\n")
    write(tmp_path / "kb/b.md", "# Bananas\n\nBananas grow in bunches.\n")
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    write(tmp_path / "kb/c.md", "# Cherries\n\nCherries ripen in early summer.\n")
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    assert kb.store.pointer() == "v000002"
    return kb.store.root / "v000002"


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_a_damaged_version_is_not_served_and_the_next_sync_repairs_it(
    tmp_path, make_kb, damage, caplog
):
    newest = await _two_versions(tmp_path, make_kb())
    DAMAGE[damage](newest)

    reader = make_kb()  # a fresh process: `helpdesk search`, `ask` or `serve`
    with caplog.at_level(logging.ERROR):
        hits = await reader.search("apples orchard", mode="bm25")
    assert hits[0].chunk.doc_id == "a" and reader.served == "v000001"
    assert "Index version v000002 is damaged" in caplog.text and "serving v000001 instead" in caplog.text
    assert list(reader.damaged) == ["v000002"]

    report = await make_kb().sync([FileSource(tmp_path / "kb", SourceOptions())])
    assert list(report.damaged) == ["v000002"]
    assert [key.rsplit("|", 1)[1] for key in report.added] == ["c"]  # built on v000001, not on v000002
    assert report.version == "v000003" and report.chunks_embedded == 2
    assert [p.name for p in reader.store.versions()] == ["v000001", "v000003"]  # the damaged one is gone
    assert (await reader.search("cherries summer", mode="bm25"))[0].chunk.doc_id == "c"
    assert reader.served == "v000003" and (await reader.current()).verified


async def test_with_every_version_damaged_search_says_to_sync_and_sync_rebuilds(tmp_path, make_kb):
    write(tmp_path / "kb/a.md", "# Apples\n\nApples grow on trees in the orchard.\n")
    kb = make_kb()
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    _zero_200_bytes(kb.store.root / "v000001" / "vectors.faiss")
    with pytest.raises(IndexDamaged, match=r"v000001 is damaged.*Run `helpdesk sync`"):
        await make_kb().search("apples", mode="bm25")
    report = await make_kb().sync([FileSource(tmp_path / "kb", SourceOptions())])
    assert report.added and report.chunks_embedded == 2 and report.version == "v000002"
    assert (await make_kb().search("apples", mode="bm25"))[0].chunk.doc_id == "a"


async def test_a_version_saved_before_checksums_still_loads(tmp_path, make_kb):
    newest = await _two_versions(tmp_path, make_kb())
    (newest / CHECKSUMS).unlink()
    manifest = json.loads((newest / "manifest.json").read_text())
    del manifest["checksums"], manifest["counts"]
    (newest / "manifest.json").write_text(json.dumps(manifest))
    reader = make_kb()
    assert (await reader.search("cherries", mode="bm25"))[0].chunk.doc_id == "c"
    assert reader.served == "v000002" and not (await reader.current()).verified
    report = await make_kb().sync([FileSource(tmp_path / "kb", SourceOptions())])
    assert report.version == "v000002" and not report.changed  # unchanged: nothing rebuilt
