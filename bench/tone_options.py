"""Command-line options shared by the tone benchmarks: pairs, adapter, model cache, engine and threads."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.settings import Settings
from bot.voice.copy_bias import DEFAULT_COPY_BIAS
from bot.voice.model import BUNDLED_ADAPTER
from bot.voice.rewriter import BACKENDS, ToneRewriter
from bot.voice.tuning import SAMPLE_PAIRS


def add_tone_options(parser: argparse.ArgumentParser, pairs_help: str) -> None:
    """Add --pairs, --adapter, --data-dir, --threads, --backend, --beams and --copy-bias."""
    parser.add_argument("--pairs", type=Path, default=SAMPLE_PAIRS, help=pairs_help)
    parser.add_argument("--adapter", type=Path, default=BUNDLED_ADAPTER, help="the tuned LoRA adapter folder")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the base model is cached (default: HELPDESK_DATA_DIR)",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads for decoding (0 = every core)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="engine of the tone model")
    parser.add_argument("--beams", type=int, default=1, help="beam search width (1 = greedy)")
    parser.add_argument(
        "--copy-bias",
        type=float,
        default=DEFAULT_COPY_BIAS,
        help="logit bias toward finishing a begun copy of the answer (0 = plain greedy)",
    )


def parse_tone_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line, with the data directory defaulting to the configured one."""
    args = parser.parse_args()
    args.data_dir = args.data_dir or Settings().data_dir
    return args


def tone_rewriter(args: argparse.Namespace, adapter: Path | None, **options) -> ToneRewriter:
    """A rewriter with `adapter` (None: the untuned base model) on the engine and threads asked for."""
    return ToneRewriter(
        adapter,
        args.data_dir,
        threads=args.threads or None,
        backend=args.backend,
        beams=args.beams,
        copy_bias=args.copy_bias,
        **options,
    )
