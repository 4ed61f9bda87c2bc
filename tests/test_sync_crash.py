"""A sync killed with SIGKILL at any moment leaves the previous version serving; the next sync finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import REPO, CountingEmbeddings, write

from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.index import IndexVersion
from knowledge.sources import FileSource, SourceOptions

SYNC_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from conftest import CountingEmbeddings
    from knowledge.base import KnowledgeBase
    from knowledge.chunking import Chunker
    from knowledge.sources import FileSource, SourceOptions

    class SlowEmbeddings(CountingEmbeddings):
        def embed_documents(self, texts):
            time.sleep(0.002 * len(texts))
            return super().embed_documents(texts)

    def progress(stage, done, total):
        print(stage, flush=True)

    kb = KnowledgeBase(Path(sys.argv[1]), SlowEmbeddings(size=32), Chunker(400, 50), "fake")
    asyncio.run(kb.sync([FileSource(Path(sys.argv[2]), SourceOptions())], progress=progress))
    print("done", flush=True)
    """
)


def _documents(data_dir) -> set[str]:
    kb = KnowledgeBase(data_dir, CountingEmbeddings(size=32), Chunker(400, 50), "fake")
    path = kb.store.current()
    version = IndexVersion.load(path, kb.embeddings)
    docs = {c.doc_id for c in version.chunks}
    assert docs == {d["doc_id"] for d in version.manifest["documents"].values()}
    assert version.keyword_index is not None and len(version) == version.store.index.ntotal
    return docs


@pytest.mark.parametrize(
    ("stage", "delay"),
    [
        ("scan", 0.0),
        ("embed", 0.05),
        ("write", 0.0),
        ("write", 0.02),
        ("write", 0.05),
        ("write", 0.1),
        ("write", 0.2),
    ],
)
async def test_kill_mid_sync_keeps_serving_the_previous_version(tmp_path, stage, delay):
    kb_dir, data_dir = tmp_path / "kb", tmp_path / "data"
    for n in range(3):
        write(kb_dir / f"old{n}.md", f"# Old {n}\n\nold document {n}")
    kb = KnowledgeBase(data_dir, CountingEmbeddings(size=32), Chunker(400, 50), "fake")
    await kb.sync([FileSource(kb_dir, SourceOptions())])
    old = _documents(data_dir)
    for n in range(150):
        write(kb_dir / f"new{n}.md", f"# New {n}\n\n" + f"new document {n} about topic {n}. " * 20)
    expected = old | {f"new{n}" for n in range(150)}

    script = tmp_path / "sync.py"
    script.write_text(SYNC_SCRIPT.format(tests=str(REPO / "tests")))
    process = subprocess.Popen(
        [sys.executable, str(script), str(data_dir), str(kb_dir)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    for line in process.stdout:
        if line.strip() in (stage, "done"):
            break
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    assert _documents(data_dir) in (old, expected)  # whole old or whole new, never half
    report = await kb.sync([FileSource(kb_dir, SourceOptions())])
    assert _documents(data_dir) == expected
    again = await kb.sync([FileSource(kb_dir, SourceOptions())])
    assert again.chunks_embedded == 0 and not again.changed
    assert report.version is not None
