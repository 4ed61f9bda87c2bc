"""Checksums of an index version's files: recorded when the version is saved, checked when it is loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHECKSUMS = "checksums.json"
# The manifest of a version that has checksums says so, so that losing checksums.json counts as damage.
MANIFEST_KEY = "checksums"


class IndexDamaged(RuntimeError):
    """An index version whose files are missing, changed or unreadable; the message says which and why."""


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_checksums(folder: Path) -> None:
    """Record the size and SHA-256 of every file of a fully written version folder."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    record = {
        "algorithm": "sha256",
        "files": {
            p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files
        },
    }
    (folder / CHECKSUMS).write_text(json.dumps(record, indent=1, sort_keys=True))


def damaged(folder: Path, problem: str) -> IndexDamaged:
    """The error for a damaged version, naming it and what is wrong."""
    return IndexDamaged(f"Index version {folder.name} is damaged: {problem}")


def verify(folder: Path) -> bool:
    """Check every file of a version against its checksums; raise IndexDamaged if one fails.

    Returns False for a version saved before checksums were recorded (nothing to check it against).
    """
    checksums = folder / CHECKSUMS
    if not checksums.is_file():
        if _manifest_claims_checksums(folder):
            raise damaged(folder, f"{CHECKSUMS} is missing")
        return False
    try:
        files = json.loads(checksums.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise damaged(folder, f"{CHECKSUMS} is unreadable ({type(error).__name__})") from None
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise damaged(folder, f"{name} is missing")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise damaged(folder, f"{name} has {size:,} bytes, {expected['bytes']:,} were written")
        if _sha256(path) != expected["sha256"]:
            raise damaged(folder, f"{name} does not match its checksum (its bytes changed)")
    return True


def _manifest_claims_checksums(folder: Path) -> bool:
    try:
        return bool(json.loads((folder / "manifest.json").read_text()).get(MANIFEST_KEY))
    except (OSError, ValueError, AttributeError) as error:
        raise damaged(folder, f"manifest.json is unreadable ({type(error).__name__})") from None
