"""Versioned index folders on disk: build beside the served one, switch atomically, one sync at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_CURRENT = "CURRENT"
_PREFIX = "v"
_BUILDING = ".building-"


class SyncInProgress(RuntimeError):
    """Another sync holds the lock on this data directory."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(path)


class IndexStore:
    """The index folder of a data directory: complete versions v000001, v000002… and a CURRENT pointer."""

    def __init__(self, root: Path):
        self.root = root

    def current(self) -> Path | None:
        """The folder of the version being served, or None before the first sync."""
        pointer = self.root / _CURRENT
        if not pointer.exists():
            return None
        path = self.root / pointer.read_text().strip()
        return path if path.is_dir() else None

    def versions(self) -> list[Path]:
        """Complete versions, oldest first."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the data directory's sync lock, or raise SyncInProgress at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "sync.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                msg = f"Another sync is running on {self.root.parent}; wait for it to finish"
                raise SyncInProgress(msg) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def building_dir(self) -> Path:
        """A fresh folder to build the next version in; leftovers of killed syncs are removed first."""
        for leftover in self.root.glob(f"{_BUILDING}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        path = self.root / f"{_BUILDING}{os.getpid()}"
        path.mkdir(parents=True)
        return path

    def publish(self, building: Path) -> Path:
        """Make a fully written version the served one: fsync, rename, then swap the pointer atomically."""
        _fsync_tree(building)
        numbers = [int(p.name[len(_PREFIX) :]) for p in self.versions()]
        final = self.root / f"{_PREFIX}{max(numbers, default=0) + 1:06d}"
        building.rename(final)
        pointer = self.root / f"{_CURRENT}.tmp"
        with pointer.open("w") as handle:
            handle.write(final.name)
            handle.flush()
            os.fsync(handle.fileno())
        pointer.replace(self.root / _CURRENT)
        _fsync_dir(self.root)
        return final

    def prune(self, keep: int = 2) -> None:
        """Delete old versions, keeping the served one and the one before it."""
        current = self.current()
        for old in self.versions()[:-keep]:
            if old != current:
                shutil.rmtree(old, ignore_errors=True)
