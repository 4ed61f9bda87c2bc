"""Incremental sync: additions, changes, deletions, unchanged documents, bad files, locking, versions."""

from __future__ import annotations

import pytest
from conftest import read_only, write

from knowledge.chunking import Chunker
from knowledge.sources import FileSource, SourceOptions
from knowledge.store import DataDirNotWritable, SyncInProgress


def _source(path):
    return FileSource(path, SourceOptions())


async def test_incremental_sync(tmp_path, make_kb, fake_embeddings):
    kb_dir = tmp_path / "kb"
    write(kb_dir / "a.md", "# Alpha\n\nAlpha explains invoices.\n")
    write(kb_dir / "b.md", "# Beta\n\nBeta explains refunds.\n")
    write(kb_dir / "c.md", "# Gamma\n\nGamma explains taxes.\n")
    kb = make_kb()
    first = await kb.sync([_source(kb_dir)])
    assert (len(first.added), first.unchanged, first.chunks_embedded) == (3, 0, 6)
    assert first.version == "v000001"

    before = fake_embeddings.embedded
    again = await kb.sync([_source(kb_dir)])
    assert (len(again.added), len(again.updated), len(again.deleted), again.unchanged) == (0, 0, 0, 3)
    assert fake_embeddings.embedded == before and again.chunks_embedded == 0
    assert again.version == "v000001"  # nothing changed: no new version

    write(kb_dir / "b.md", "# Beta\n\nBeta explains refunds within 30 days.\n")
    (kb_dir / "c.md").unlink()
    write(kb_dir / "d.md", "# Delta\n\nDelta explains payouts.\n")
    (kb_dir / "a.md").touch()  # a new mtime with the same bytes costs nothing
    third = await kb.sync([_source(kb_dir)])
    assert [k.rsplit("|", 1)[1] for k in third.added] == ["d"]
    assert [k.rsplit("|", 1)[1] for k in third.updated] == ["b"]
    assert [k.rsplit("|", 1)[1] for k in third.deleted] == ["c"]
    assert third.unchanged == 1 and third.chunks_embedded == 4
    assert fake_embeddings.embedded - before == 4
    assert third.version == "v000002"

    version = await kb.current()
    assert {c.doc_id for c in version.chunks} == {"a", "b", "d"}
    assert any("30 days" in c.text for c in version.chunks)
    hits = await kb.search("payouts", k=1, mode="bm25")
    assert hits[0].chunk.doc_id == "d"


async def test_broken_file_keeps_its_last_good_version(tmp_path, make_kb):
    kb_dir = tmp_path / "kb"
    write(kb_dir / "a.md", "# Alpha\n\nAlpha explains invoices.\n")
    write(kb_dir / "b.md", "# Beta\n\nBeta explains refunds.\n")
    kb = make_kb()
    await kb.sync([_source(kb_dir)])
    write(kb_dir / "b.md", b"\xff\xfe\x00\x00broken")
    write(kb_dir / "new.txt", b"\xe9t\xe9")
    report = await kb.sync([_source(kb_dir)])
    reasons = {s.where: s.reason for s in report.skipped}
    assert "kept the last good version" in reasons["b.md"]
    assert "UTF-8" in reasons["new.txt"] and "kept" not in reasons["new.txt"]
    assert report.deleted == [] and report.unchanged == 2


async def test_sources_not_listed_survive_a_partial_sync_and_go_with_a_full_one(tmp_path, make_kb):
    write(tmp_path / "one/a.md", "# A\n\ntext a")
    write(tmp_path / "two/b.md", "# B\n\ntext b")
    kb = make_kb()
    await kb.sync([_source(tmp_path / "one"), _source(tmp_path / "two")])
    partial = await kb.sync([_source(tmp_path / "one")])
    assert partial.deleted == [] and partial.unchanged == 2
    full = await kb.sync([_source(tmp_path / "one")], prune_unlisted=True)
    assert [k.rsplit("|", 1)[1] for k in full.deleted] == ["b"]


async def test_same_id_in_two_sources_are_two_documents(tmp_path, make_kb):
    write(tmp_path / "one/faq.md", "# One\n\nfirst")
    write(tmp_path / "two/faq.md", "# Two\n\nsecond")
    kb = make_kb()
    report = await kb.sync([_source(tmp_path / "one"), _source(tmp_path / "two")])
    assert len(report.added) == 2


async def test_duplicate_ids_in_one_folder_are_reported(tmp_path, make_kb):
    write(tmp_path / "kb/guide.md", "# Guide\n\nmarkdown")
    write(tmp_path / "kb/guide.txt", "text version")
    report = await make_kb().sync([_source(tmp_path / "kb")])
    assert len(report.added) == 1
    assert "duplicate document id 'guide'" in report.skipped[0].reason


async def test_a_second_sync_waits_for_none(tmp_path, make_kb):
    write(tmp_path / "kb/a.md", "# A\n\ntext")
    kb = make_kb()
    with kb.store.lock(), pytest.raises(SyncInProgress, match="Another sync is running"):
        await kb.sync([_source(tmp_path / "kb")])
    report = await kb.sync([_source(tmp_path / "kb")])
    assert len(report.added) == 1


async def test_chunking_change_rebuilds_everything(tmp_path, make_kb, fake_embeddings):
    write(tmp_path / "kb/a.md", "# A\n\n" + "word " * 300)
    kb = make_kb()
    await kb.sync([_source(tmp_path / "kb")])
    rechunked = type(kb)(kb.data_dir, fake_embeddings, Chunker(300, 0), "fake")
    report = await rechunked.sync([_source(tmp_path / "kb")])
    assert len(report.updated) == 1 and report.chunks_embedded > 0


async def test_old_versions_are_pruned_and_leftovers_removed(tmp_path, make_kb):
    kb = make_kb()
    for n in range(4):
        write(tmp_path / "kb/a.md", f"# A\n\nversion {n}")
        await kb.sync([_source(tmp_path / "kb")])
    leftover = kb.store.root / ".building-99999"
    leftover.mkdir()
    write(tmp_path / "kb/a.md", "# A\n\nversion final")
    await kb.sync([_source(tmp_path / "kb")])
    assert [p.name for p in kb.store.versions()] == ["v000004", "v000005"]
    assert not leftover.exists()


async def test_search_follows_new_versions(tmp_path, make_kb):
    write(tmp_path / "kb/a.md", "# A\n\napples")
    kb = make_kb()
    await kb.sync([_source(tmp_path / "kb")])
    reader = make_kb()
    assert (await reader.search("apples", mode="bm25"))[0].chunk.doc_id == "a"
    write(tmp_path / "kb/b.md", "# B\n\nbananas")
    await kb.sync([_source(tmp_path / "kb")])
    assert (await reader.search("bananas", mode="bm25"))[0].chunk.doc_id == "b"


async def test_empty_knowledge_base_says_to_sync(make_kb):
    from knowledge.base import KnowledgeBaseEmpty

    with pytest.raises(KnowledgeBaseEmpty, match="helpdesk sync"):
        await make_kb().search("anything")


async def test_a_sync_into_a_read_only_data_directory_fails_with_one_clear_line(tmp_path, make_kb):
    write(tmp_path / "kb/a.md", "# A\n\napples")
    kb = make_kb()
    await kb.sync([_source(tmp_path / "kb")])
    write(tmp_path / "kb/b.md", "# B\n\nbananas")
    with read_only(kb.store.root), pytest.raises(DataDirNotWritable) as raised:
        await kb.sync([_source(tmp_path / "kb")])
    message = str(raised.value)
    assert "\n" not in message and "Cannot write the index in" in message
    assert "HELPDESK_DATA_DIR" in message
    assert (await make_kb().search("apples", mode="bm25"))[0].chunk.doc_id == "a"  # still served
    assert (await kb.sync([_source(tmp_path / "kb")])).added  # writable again: the sync goes through


async def test_an_error_code_is_also_searched_as_the_words_it_joins(tmp_path, make_kb):
    write(
        tmp_path / "kb" / "declined.md", "# Declined cards\n\nThe bank declined the card without a reason.\n"
    )
    write(
        tmp_path / "kb" / "cvc.md", "# Security code errors\n\nThe code on the back of the card was wrong.\n"
    )
    kb = make_kb()
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    hits = await kb.search("payment failed with code card_declined", mode="bm25")
    assert hits[0].chunk.doc_id == "declined"
