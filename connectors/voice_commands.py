"""The `helpdesk tune` and `helpdesk rewrite` commands: train the brand voice, try it on a text."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bot.voice.model import BUNDLED_ADAPTER
from bot.voice.tuning import SAMPLE_PAIRS


def tune(
    data: Annotated[
        Path,
        typer.Option(
            dir_okay=False,
            help='JSONL of {"input", "output", "split": "train"|"heldout"} pairs: plain answer → brand voice.',
        ),
    ] = SAMPLE_PAIRS,
    output: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Folder for the adapter. Default: HELPDESK_TONE_ADAPTER if set, else <data dir>/tone-adapter.",
        ),
    ] = None,
    epochs: Annotated[float, typer.Option(min=0.1, help="Passes over the training pairs.")] = 3.0,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Optimiser steps to train for; overrides --epochs.")
    ] = None,
    rank: Annotated[int, typer.Option(min=1, max=64, help="LoRA rank: higher learns more, is bigger.")] = 8,
    learning_rate: Annotated[
        float, typer.Option(min=1e-6, max=1e-1, help="Peak AdamW learning rate.")
    ] = 5e-4,
    batch_size: Annotated[int, typer.Option(min=1, max=64, help="Pairs per optimiser step.")] = 8,
    max_tokens: Annotated[
        int, typer.Option(min=64, help="Longest prompt + reply in tokens; longer pairs are skipped.")
    ] = 320,
    threads: Annotated[
        int,
        typer.Option(
            min=0, help="CPU threads for torch; 0 = all cores. Use 1 on a machine busy with other work."
        ),
    ] = 0,
    restart: Annotated[
        bool,
        typer.Option(help="Discard an unfinished run (or a finished adapter) in --output and start over."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the training report as one JSON object.")
    ] = False,
) -> None:
    """Fine-tune the packaged small model (LoRA) on brand-voice pairs; an interrupted run resumes.

    Re-running with the same data and options reuses the finished adapter. Held-out pairs are never trained on.
    Beside the adapter goes the brand's usual wording (voice_words.json): every word the training rewrites add
    to their plain answers. The fact guard lets a rewrite add no other word.
    """
    from bot.voice.tuning import TuningConfig
    from bot.voice.tuning import tune as train_adapter
    from connectors.cli import _fail, _settings, console, out

    settings = _settings()
    if not data.is_file():
        raise _fail(f"No training pairs at {data}: pass --data with a JSONL file of pairs")
    if threads:
        import torch

        torch.set_num_threads(threads)
    config = TuningConfig(
        data=data,
        output=output or settings.tone_adapter or settings.data_dir / "tone-adapter",
        data_dir=settings.data_dir,
        epochs=epochs,
        steps=steps,
        rank=rank,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_tokens=max_tokens,
    )
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=as_json) as progress:
        task = progress.add_task("Loading the base model", total=None, loss=float("nan"))

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, description="Tuning", completed=step, total=total, loss=loss)

        try:
            report = train_adapter(config, on_step, restart=restart)
        except (ValueError, RuntimeError, FileNotFoundError) as error:
            raise _fail(str(error)) from None
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        return
    table = Table(title="Tone adapter", show_header=False)
    for label, value in [
        ("adapter", report.adapter_dir),
        ("status", "already trained with these options" if report.already_trained else "trained"),
        ("steps", report.steps),
        ("training pairs", report.train_pairs),
        ("held-out pairs", report.heldout_pairs),
        ("training loss (last steps)", report.train_loss),
        ("held-out loss before → after", f"{report.heldout_loss_before} → {report.heldout_loss}"),
        ("training time", f"{report.seconds / 60:.1f} min"),
        ("adapter size", f"{report.adapter_mb} MB"),
    ]:
        table.add_row(label, str(value))
    out.print(table)
    if config.output.resolve() not in {
        settings.tone_adapter and settings.tone_adapter.resolve(),
        BUNDLED_ADAPTER,
    }:
        out.print(f"To use it, set HELPDESK_TONE_ADAPTER={config.output}")


def rewrite(
    text: Annotated[str, typer.Argument(help="The answer to rewrite in the brand voice.")],
    adapter: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="LoRA adapter folder (default: HELPDESK_TONE_ADAPTER or the bundled one)."
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print {input, output, guard_passed, fallback, ms} as one JSON object."),
    ] = False,
) -> None:
    """Rewrite a text in the brand voice; if a fact would change, print the text unchanged."""
    from bot.voice.rewriter import ToneRewriter
    from connectors.cli import _fail, _settings, out

    settings = _settings()
    overrides = {"tone_enabled": True, **({"tone_adapter": adapter} if adapter else {})}
    try:
        rewriter = ToneRewriter.from_settings(settings.model_copy(update=overrides))
    except (FileNotFoundError, RuntimeError) as error:
        raise _fail(str(error)) from None
    if rewriter is None:
        raise _fail("No tone adapter found: train one with `helpdesk tune` and set HELPDESK_TONE_ADAPTER")

    async def run():
        await rewriter.load()
        return await rewriter.rewrite(text)

    result = asyncio.run(run())
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    else:
        out.print(result.output, highlight=False, markup=False)
