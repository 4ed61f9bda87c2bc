"""Which index version to serve or to sync on: the newest that passes its checks; and the index's health."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings

from knowledge.documents import DOCUMENT_KIND
from knowledge.index import IndexVersion, RankedIndex
from knowledge.integrity import IndexDamaged, verify
from knowledge.store import IndexStore
from knowledge.sync_log import SyncLog

log = logging.getLogger(__name__)


def _identity(path: Path) -> tuple[str, int]:
    """A version folder's name and inode: a name reused after a damaged folder was removed is a new version."""
    try:
        return path.name, path.stat().st_ino
    except OSError:
        return path.name, 0


@dataclass
class SoundVersion:
    """The newest version that loaded and passed its checks, and the newer ones that failed, with why."""

    path: Path | None
    version: RankedIndex | None
    damaged: dict[str, str]
    # Its name: the folder's, or the version's in the database.
    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is None and self.path is not None:
            self.name = self.path.name


def load_newest_sound(
    store: IndexStore, embeddings: Embeddings, known_damaged: dict[tuple[str, int], str] | None = None
) -> SoundVersion:
    """Load the version last published, or, if it is damaged, the newest that is not.

    `known_damaged` remembers failed versions between calls (versions never change once published), so a
    damaged one is checked once, not at every question.
    """
    known = {} if known_damaged is None else known_damaged
    damaged: dict[str, str] = {}
    for path in store.candidates():
        identity = _identity(path)
        if identity in known:
            damaged[path.name] = known[identity]
            continue
        try:
            version = IndexVersion.load(path, embeddings)
        except IndexDamaged as error:
            known[identity] = damaged[path.name] = str(error)
            continue
        return SoundVersion(path, version, damaged)
    return SoundVersion(None, None, damaged)


def all_damaged(where: str, damaged: dict[str, str]) -> IndexDamaged:
    """The error when no version can be served: what is wrong with the newest, and how to rebuild."""
    newest = next(iter(damaged.values()), "")
    msg = f"No usable index in {where}: {newest}. Run `helpdesk sync` to rebuild it from the sources"
    return IndexDamaged(msg)


def check(path: Path) -> tuple[str, str | None]:
    """A version's health from its checksums alone (no model needed): ("ok" | "unverified" | "damaged", why)."""
    try:
        return ("ok" if verify(path) else "unverified"), None
    except IndexDamaged as error:
        return "damaged", str(error)


def _counts(path: Path, manifest: dict) -> dict[str, int]:
    if "counts" in manifest:
        return manifest["counts"]
    passages = 0
    with (path / "chunks.jsonl").open() as lines:
        passages = sum(json.loads(line).get("kind") not in ("title", DOCUMENT_KIND) for line in lines)
    return {"documents": len(manifest.get("documents", {})), "passages": passages}


def index_health(store: IndexStore, syncs: int = 5) -> dict:
    """What `helpdesk status` reports, from checksums and manifests alone (no model is loaded).

    `state` is "ok" (the version last published is served and passes its checks), "unverified" (served,
    saved before checksums were recorded), "degraded" (it is damaged: an older version is served), "damaged"
    (no version is usable) or "empty" (never synced).
    """
    versions = {path.name: check(path) for path in store.candidates()}
    served = next((name for name, (health, _) in versions.items() if health != "damaged"), None)
    published = store.pointer()
    if served is None:
        state = "damaged" if versions else "empty"
    elif served != published:
        state = "degraded"
    else:
        state = versions[served][0]
    report: dict = {"index": str(store.root), "state": state, "published": published, "served": served}
    if served is not None:
        path = store.root / served
        manifest = json.loads((path / "manifest.json").read_text())
        report.update(_counts(path, manifest), created_at=manifest.get("created_at"))
    report["damaged"] = {name: problem for name, (health, problem) in versions.items() if problem}
    report["last_syncs"] = SyncLog.of(store).last(syncs)
    return report
