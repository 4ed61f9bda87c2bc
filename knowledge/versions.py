"""Which index version to serve or to sync on: the newest that passes its checks; and the index's health."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings

from knowledge.documents import DOCUMENT_KIND
from knowledge.index import IndexVersion
from knowledge.integrity import IndexDamaged, verify
from knowledge.store import IndexStore

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
    version: IndexVersion | None
    damaged: dict[str, str]


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


def all_damaged(store: IndexStore, damaged: dict[str, str]) -> IndexDamaged:
    """The error when no version can be served: what is wrong with the newest, and how to rebuild."""
    newest = next(iter(damaged.values()), "")
    msg = (
        f"No usable index in {store.root.parent}: {newest}. "
        "Run `helpdesk sync` to rebuild it from the sources"
    )
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


def index_health(store: IndexStore) -> dict:
    """What `helpdesk status` reports: the version served, its health and size, and every version's check."""
    versions = {path.name: check(path) for path in store.candidates()}
    served = next((name for name, (state, _) in versions.items() if state != "damaged"), None)
    health = {
        "published": store.pointer(),
        "served": served,
        "versions": [
            {"name": name, "health": state, **({"problem": problem} if problem else {})}
            for name, (state, problem) in sorted(versions.items())
        ],
    }
    if served is not None:
        path = store.root / served
        manifest = json.loads((path / "manifest.json").read_text())
        health.update(created_at=manifest.get("created_at"), health=versions[served][0])
        health.update(_counts(path, manifest))
    return health
