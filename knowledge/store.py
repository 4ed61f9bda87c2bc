"""Versioned index folders on disk: build beside the served one, switch atomically, one sync at a time."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

_CURRENT = "CURRENT"
_PREFIX = "v"
_BUILDING = ".building-"


class SyncInProgress(RuntimeError):
    """Another sync holds the lock on this data directory."""


class DataDirNotWritable(RuntimeError):
    """The index folder cannot be written (read-only, no permission, disk full); the message says what to do."""


@contextlib.contextmanager
def _writing(root: Path) -> Iterator[None]:
    """Turn a failed write under `root` into DataDirNotWritable with one line saying what to do."""
    try:
        yield
    except OSError as error:
        where = f" ({error.filename})" if error.filename and str(error.filename) != str(root) else ""
        if error.errno == errno.ENOSPC:
            advice = "free some space, or set HELPDESK_DATA_DIR to a folder on another disk"
        else:
            advice = "make it writable for this user, or set HELPDESK_DATA_DIR to a writable folder"
        msg = f"Cannot write the index in {root}: {error.strerror or error}{where}. To fix it, {advice}"
        raise DataDirNotWritable(msg) from None


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

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> IndexStore:
        """The index folder of a data directory."""
        return cls(data_dir / "index")

    def pointer(self) -> str | None:
        """The name of the version CURRENT points to (the one last published), or None before the first sync."""
        try:
            return (self.root / _CURRENT).read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def current(self) -> Path | None:
        """The folder of the version last published, or None before the first sync."""
        name = self.pointer()
        path = self.root / name if name else None
        return path if path is not None and path.is_dir() else None

    def candidates(self) -> list[Path]:
        """Versions to serve, in order of preference: the one last published, then the others newest first."""
        current = self.current()
        others = [path for path in reversed(self.versions()) if path != current]
        return [current, *others] if current else others

    def versions(self) -> list[Path]:
        """Complete versions, oldest first."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the data directory's sync lock, or raise SyncInProgress (or DataDirNotWritable) at once."""
        with _writing(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            handle = (self.root / "sync.lock").open("w")
        with handle:
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
        with _writing(self.root):
            path.mkdir(parents=True)
        return path

    def check_writable(self) -> None:
        """Raise DataDirNotWritable now, before any work, if nothing can be written in the index folder."""
        with _writing(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """A block that writes under the index folder: a failed write raises DataDirNotWritable."""
        return _writing(self.root)

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

    def prune(self, keep: int = 2, damaged: Collection[str] = ()) -> None:
        """Delete old versions, keeping the served one and the one before it; damaged ones go too."""
        current = self.current()
        sound = [path for path in self.versions() if path.name not in damaged]
        broken = [path for path in self.versions() if path.name in damaged]
        for old in [*sound[:-keep], *broken]:
            if old != current:
                shutil.rmtree(old, ignore_errors=True)
