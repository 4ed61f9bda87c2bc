"""LoRA fine-tuning of the tone model on plain → on-brand answer pairs: on the CPU, resumable, re-runnable."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.voice.model import (
    ADAPTER_WEIGHTS,
    BASE_MODEL_NAME,
    INSTRUCTION,
    KEEP_LABEL,
    load_base_model,
    prompt_ids,
    reply_ids,
)
from bot.voice.words import VOICE_FILE, learn_voice_words, save_voice_words

SAMPLE_PAIRS = Path(__file__).resolve().parents[2] / "examples" / "acme-tone" / "pairs.jsonl"
CHECKPOINT_DIR = ".checkpoint"
TUNING_RECORD = "tuning.json"
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Pair:
    """A plain answer and the same answer in the brand voice."""

    id: str
    input: str
    output: str
    split: str


@dataclass(frozen=True)
class TuningConfig:
    """What to train on and how; everything but the folders and checkpoint interval shapes the adapter."""

    data: Path
    output: Path
    data_dir: Path
    epochs: float = 3.0
    steps: int | None = None
    rank: int = 8
    learning_rate: float = 5e-4
    batch_size: int = 8
    max_tokens: int = 320
    seed: int = 0
    checkpoint_every: int = 20
    target_modules: tuple[str, ...] = ALL_LINEAR

    def recipe(self) -> dict:
        """The settings that determine the trained weights (a changed recipe means a different adapter)."""
        keep = ("epochs", "steps", "rank", "learning_rate", "batch_size", "max_tokens", "seed")
        return {**{k: getattr(self, k) for k in keep}, "target_modules": list(self.target_modules)}


@dataclass
class TuningReport:
    """The outcome of `tune`: where the adapter is and how well it fits the held-out pairs."""

    adapter_dir: str
    steps: int
    train_pairs: int
    heldout_pairs: int
    train_loss: float
    heldout_loss: float | None
    heldout_loss_before: float | None
    seconds: float
    adapter_mb: float
    resumed_at_step: int = 0
    already_trained: bool = False
    skipped_long_pairs: int = 0
    recipe: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def load_pairs(path: Path) -> list[Pair]:
    """Pairs from a JSONL file with "input", "output" and "split" ("train" or "heldout") on every line."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(
                Pair(str(row.get("id", number)), row["input"], row["output"], row.get("split", "train"))
            )
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            msg = f'{path}:{number}: expected a JSON object with "input", "output" and "split" ({error})'
            raise ValueError(msg) from None
    if not any(p.split == "train" for p in pairs):
        msg = f'{path} has no pairs with "split": "train"; mark the pairs to learn from as "train"'
        raise ValueError(msg)
    return pairs


def _fingerprint(config: TuningConfig, pairs_path: Path) -> str:
    digest = hashlib.sha256(Path(pairs_path).read_bytes())
    recipe = {**config.recipe(), "base": BASE_MODEL_NAME, "instruction": INSTRUCTION, "keep": KEEP_LABEL}
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _examples(pairs: list[Pair], tokenizer, max_tokens: int) -> tuple[list[tuple[list[int], list[int]]], int]:
    """(input ids, labels) per pair, learning only the reply; pairs longer than max_tokens are skipped."""
    examples, skipped = [], 0
    for pair in pairs:
        prompt, reply = prompt_ids(tokenizer, pair.input), reply_ids(tokenizer, pair.output)
        if len(prompt) + len(reply) > max_tokens:
            skipped += 1
            continue
        examples.append((prompt + reply, [-100] * len(prompt) + reply))
    return examples, skipped


def _batch(examples, pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (tokens, targets) in enumerate(examples):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(targets)] = torch.tensor(targets)
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def reply_loss(model, batch):
    """Summed cross-entropy over the reply tokens only (logits are computed for those alone), and their count."""
    import torch

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    logits = causal_lm.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum"), int(keep.sum())


def mean_loss(model, examples, pad_id: int, batch_size: int = 8) -> float:
    """Token-weighted mean cross-entropy of the replies."""
    import torch

    total, tokens = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            summed, count = reply_loss(model, _batch(examples[start : start + batch_size], pad_id))
            total += float(summed)
            tokens += count
    return total / max(tokens, 1)


def _schedule(lengths: list[int], config: TuningConfig) -> list[list[int]]:
    """The batches of every step: each epoch reshuffled, similar lengths batched together to save padding."""
    import numpy as np

    n, size = len(lengths), config.batch_size
    steps = config.steps or max(1, math.ceil(config.epochs * n / size))
    rng = np.random.default_rng(config.seed)
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = rng.permutation(n).tolist()
        epoch = []
        for start in range(0, n, size * 8):
            window = sorted(order[start : start + size * 8], key=lambda i: lengths[i])
            epoch += [window[i : i + size] for i in range(0, len(window), size)]
        batches += [epoch[i] for i in rng.permutation(len(epoch))]
    return batches[:steps]


def _save_atomically(obj, path: Path) -> None:
    import torch

    partial = path.with_suffix(".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def _load_checkpoint(path: Path, fingerprint: str) -> dict | None:
    """The state of an interrupted run, if there is one and it was made with the same data and options."""
    import torch

    if not path.is_file():
        return None
    state = torch.load(path, weights_only=False)
    if state.get("fingerprint") != fingerprint:
        msg = (
            f"{path.parent} holds an unfinished run with other data or options: "
            "re-run with the same options to resume it, or pass --restart to discard it"
        )
        raise ValueError(msg)
    return state


def _finished_report(config: TuningConfig, fingerprint: str) -> TuningReport | None:
    record = config.output / TUNING_RECORD
    if not (record.is_file() and (config.output / ADAPTER_WEIGHTS).is_file()):
        return None
    saved = json.loads(record.read_text())
    if saved.get("fingerprint") != fingerprint:
        return None
    return TuningReport(**{**saved["report"], "adapter_dir": str(config.output), "already_trained": True})


def voice_words(pairs: list[Pair]) -> frozenset[str]:
    """The brand's usual wording: every word its training rewrites add to their plain answers."""
    return learn_voice_words((p.input, p.output) for p in pairs if p.split == "train")


def _write_adapter(
    model, output: Path, report: TuningReport, fingerprint: str, voice: frozenset[str]
) -> None:
    """Write the adapter (weights as float16, half the size), its record and voice words, replacing any previous."""
    from safetensors.torch import load_file, save_file

    staging = output / ".adapter.partial"
    shutil.rmtree(staging, ignore_errors=True)
    # The adapter names the packaged base model, not the cache folder of the machine it was trained on.
    model.peft_config["default"].base_model_name_or_path = BASE_MODEL_NAME
    model.save_pretrained(staging)
    weights = {k: v.half().contiguous() for k, v in load_file(staging / ADAPTER_WEIGHTS).items()}
    save_file(weights, staging / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    report.adapter_mb = round((staging / ADAPTER_WEIGHTS).stat().st_size / 1e6, 2)
    saved = {k: v for k, v in report.to_dict().items() if k != "adapter_dir"}
    record = {"fingerprint": fingerprint, "base_model": BASE_MODEL_NAME, "report": saved}
    (staging / TUNING_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    save_voice_words(staging, voice)
    for name in ("adapter_config.json", ADAPTER_WEIGHTS, TUNING_RECORD, VOICE_FILE):
        (staging / name).chmod(0o644)
        os.replace(staging / name, output / name)
    shutil.rmtree(staging, ignore_errors=True)


def tune(
    config: TuningConfig,
    on_step: Callable[[int, int, float], None] | None = None,
    restart: bool = False,
) -> TuningReport:
    """Train a LoRA adapter into `config.output`; resumes an interrupted run, and skips a finished one.

    `on_step(step, total_steps, loss)` is called after every optimiser step, once its checkpoint is saved.
    """
    fingerprint = _fingerprint(config, config.data)
    pairs = load_pairs(config.data)
    checkpoint = config.output / CHECKPOINT_DIR / "state.pt"
    if restart:
        shutil.rmtree(checkpoint.parent, ignore_errors=True)
    elif finished := _finished_report(config, fingerprint):
        save_voice_words(config.output, voice_words(pairs))  # an adapter trained before voice words existed
        return finished
    state = _load_checkpoint(checkpoint, fingerprint)
    return _train(config, pairs, fingerprint, state, checkpoint, on_step)


def _train(
    config: TuningConfig, pairs: list[Pair], fingerprint: str, state: dict | None, checkpoint: Path, on_step
):
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict
    from transformers import get_cosine_schedule_with_warmup

    torch.manual_seed(config.seed)
    model, tokenizer = load_base_model(config.data_dir, dtype=torch.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train, skipped = _examples([p for p in pairs if p.split == "train"], tokenizer, config.max_tokens)
    heldout, skipped_heldout = _examples(
        [p for p in pairs if p.split != "train"], tokenizer, config.max_tokens
    )
    if not train:
        msg = f"Every training pair is longer than {config.max_tokens} tokens: raise --max-tokens"
        raise ValueError(msg)
    batches = _schedule([len(ids) for ids, _ in train], config)
    steps = len(batches)
    heldout_before = state["heldout_loss_before"] if state else None
    if state is None and heldout:
        heldout_before = mean_loss(model, heldout, pad_id, config.batch_size)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=2 * config.rank,
        lora_dropout=0.05,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    scheduler = get_cosine_schedule_with_warmup(optimizer, max(1, min(10, steps // 10)), steps)
    step, elapsed, recent = 0, 0.0, []
    if state is not None:
        set_peft_model_state_dict(model, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        step, elapsed, recent = state["step"], state["seconds"], state["recent_losses"]
    resumed_at = step
    started = time.perf_counter() - elapsed
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    while step < steps:
        model.train()
        summed, count = reply_loss(model, _batch([train[i] for i in batches[step]], pad_id))
        loss = summed / count
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        recent = [*recent[-19:], float(loss.detach())]
        if step % config.checkpoint_every == 0 and step < steps:
            state = {
                "fingerprint": fingerprint,
                "step": step,
                "lora": get_peft_model_state_dict(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "seconds": time.perf_counter() - started,
                "recent_losses": recent,
                "heldout_loss_before": heldout_before,
            }
            _save_atomically(state, checkpoint)
        if on_step:
            on_step(step, steps, recent[-1])
    report = TuningReport(
        adapter_dir=str(config.output),
        steps=steps,
        train_pairs=len(train),
        heldout_pairs=len(heldout),
        train_loss=round(sum(recent) / max(len(recent), 1), 4),
        heldout_loss=round(mean_loss(model, heldout, pad_id, config.batch_size), 4) if heldout else None,
        heldout_loss_before=round(heldout_before, 4) if heldout_before is not None else None,
        seconds=round(time.perf_counter() - started, 1),
        adapter_mb=0.0,
        resumed_at_step=resumed_at,
        skipped_long_pairs=skipped + skipped_heldout,
        recipe=config.recipe(),
    )
    _write_adapter(model, config.output, report, fingerprint, voice_words(pairs))
    shutil.rmtree(config.output / CHECKPOINT_DIR, ignore_errors=True)
    return report
