"""A tiny real tuning run: trains an adapter end to end, reuses it, resumes an interrupted run exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
from conftest import REPO
from safetensors.torch import load_file
from typer.testing import CliRunner

from bot.voice.model import ensure_base_model
from bot.voice.tuning import ADAPTER_WEIGHTS, CHECKPOINT_DIR, TuningConfig, load_pairs, voice_words
from bot.voice.tuning import tune as train_adapter
from bot.voice.words import VOICE_FILE, load_voice_words
from connectors.voice_commands import rewrite, tune

PAIRS = REPO / "examples" / "acme-tone" / "pairs.jsonl"


@pytest.fixture(scope="session")
def converted_base_model(tmp_path_factory) -> Path:
    """A data directory holding the base model converted from the package, made once per session (~20 s).

    A fixed folder of the session, so the modules that import this fixture share one conversion.
    """
    data_dir = tmp_path_factory.getbasetemp() / "tone-base"
    ensure_base_model(data_dir)
    return data_dir


@pytest.fixture
def tone_data_dir(tmp_path, converted_base_model) -> Path:
    """A fresh data directory with the session's converted base model linked in."""
    data_dir = tmp_path / "data"
    (data_dir / "models").mkdir(parents=True)
    for folder in (converted_base_model / "models").iterdir():
        (data_dir / "models" / folder.name).symlink_to(folder, target_is_directory=True)
    return data_dir


@pytest.fixture
def few_pairs(tmp_path) -> Path:
    """The four shortest training pairs and two held-out pairs of the sample brand."""
    pairs = load_pairs(PAIRS)
    train = sorted((p for p in pairs if p.split == "train"), key=lambda p: len(p.input + p.output))[:4]
    heldout = [p for p in pairs if p.split == "heldout"][:2]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p.__dict__) + "\n" for p in train + heldout))
    return path


def _config(pairs: Path, output: Path, data_dir: Path, **options) -> TuningConfig:
    tiny = {"steps": 3, "batch_size": 2, "rank": 2, "checkpoint_every": 1, "max_tokens": 200}
    return TuningConfig(data=pairs, output=output, data_dir=data_dir, **{**tiny, **options})


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(tune)
    app.command()(rewrite)
    return app


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_tune_trains_resumes_and_reuses_an_adapter(tmp_path, tone_data_dir, few_pairs, monkeypatch):
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tone_data_dir))
    straight = tmp_path / "straight"
    command = ["tune", "--data", str(few_pairs), "--output", str(straight), "--steps", "3"]
    command += ["--batch-size", "2", "--rank", "2", "--max-tokens", "200", "--json"]
    run = CliRunner().invoke(_cli(), command)
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["steps"] == 3 and report["train_pairs"] == 4 and report["heldout_pairs"] == 2
    assert math.isfinite(report["heldout_loss"]) and math.isfinite(report["heldout_loss_before"])
    assert 0 < report["adapter_mb"] < 10  # the shipped-adapter budget
    assert (straight / "adapter_config.json").is_file() and not (straight / CHECKPOINT_DIR).exists()
    assert load_voice_words(straight) == voice_words(load_pairs(few_pairs))

    # The same run again is answered from the finished adapter, without training; it writes the voice words
    # an adapter from before they existed lacks.
    (straight / VOICE_FILE).unlink()
    again = train_adapter(_config(few_pairs, straight, tone_data_dir))
    assert again.already_trained and again.heldout_loss == report["heldout_loss"]
    assert load_voice_words(straight) == voice_words(load_pairs(few_pairs))

    # Interrupted after step 2, the run resumes there and ends with the same weights.
    resumed = tmp_path / "resumed"

    def stop_after_two(step, total, loss):
        if step == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_adapter(_config(few_pairs, resumed, tone_data_dir), on_step=stop_after_two)
    assert (resumed / CHECKPOINT_DIR / "state.pt").is_file()
    with pytest.raises(ValueError, match="--restart"):
        train_adapter(_config(few_pairs, resumed, tone_data_dir, learning_rate=1e-3))
    finished = train_adapter(_config(few_pairs, resumed, tone_data_dir))
    assert finished.resumed_at_step == 2 and finished.steps == 3
    expected, actual = load_file(straight / ADAPTER_WEIGHTS), load_file(resumed / ADAPTER_WEIGHTS)
    assert expected.keys() == actual.keys()
    assert all((expected[k].float() - actual[k].float()).abs().max() < 1e-3 for k in expected)


def test_pairs_without_a_training_split_are_refused(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"input": "a", "output": "b", "split": "heldout"}) + "\n")
    with pytest.raises(ValueError, match='"split": "train"'):
        load_pairs(path)
    path.write_text('{"input": "only an input"}\n')
    with pytest.raises(ValueError, match=r"pairs\.jsonl:1"):
        load_pairs(path)


def test_every_tone_command_option_has_help():
    command = typer.main.get_command(_cli())
    for name in ("tune", "rewrite"):
        for parameter in command.commands[name].params:
            assert getattr(parameter, "help", None), f"{name} {parameter.name} has no help"
