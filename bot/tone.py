"""The tone rewriter: restyles an answer in the brand voice with the tuned small model, behind the fact guard."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings
from bot.tone_guard import DEFAULT_BOUNDS, LengthBounds, check_rewrite
from bot.tone_model import BUNDLED_ADAPTER, load_base_model, load_tuned_model, prompt_ids

log = logging.getLogger(__name__)

# Answers longer than this are posted as written: the model learnt on short answers and would be slow.
MAX_INPUT_WORDS = 200
# A rewrite mostly copies the answer: drafts of this many tokens are looked up in the prompt and checked in
# one forward pass. Greedy output stays identical; decoding is 2–3x faster.
PROMPT_LOOKUP_TOKENS = 10
# Collecting the worker's result after its own deadline may take a moment more.
TIMEOUT_GRACE_S = 0.5


@dataclass(frozen=True)
class RewriteResult:
    """A rewrite and how it went: with `fallback` the output is the input, unchanged."""

    input: str
    output: str
    guard_passed: bool
    fallback: bool
    ms: float
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The JSON object of `helpdesk rewrite --json`."""
        return {
            "input": self.input,
            "output": self.output,
            "guard_passed": self.guard_passed,
            "fallback": self.fallback,
            "ms": self.ms,
        }


@dataclass(frozen=True)
class Generation:
    """The model's raw reply, and whether it ended by itself (not cut off by the token or time budget)."""

    text: str
    finished: bool


@contextmanager
def _torch_threads(count: int | None):
    """Compute with `count` threads inside the block (small-batch decoding is fastest on one core)."""
    import torch

    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count:
            torch.set_num_threads(previous)


class ToneRewriter:
    """Rewrites answers in the brand voice; posts them unchanged when a fact would change or time runs out.

    The model loads on first use (or on `await load()`), and runs in a worker thread, one rewrite at a time.
    """

    def __init__(
        self,
        adapter_dir: Path | None,
        data_dir: Path,
        timeout_s: float = 4.0,
        bounds: LengthBounds = DEFAULT_BOUNDS,
        threads: int | None = 1,
    ):
        """`adapter_dir=None` rewrites with the untuned base model (for comparisons only).

        The model computes in bfloat16 where the CPU supports it natively, else in float32; `threads` is the
        torch thread count while rewriting (None: torch's own).
        """
        self.adapter_dir = Path(adapter_dir) if adapter_dir else None
        self.data_dir = Path(data_dir)
        self.timeout_s = timeout_s
        self.bounds = bounds
        self.threads = threads
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ToneRewriter | None:
        """The configured rewriter; None when rewriting is off or no adapter is bundled or configured."""
        if not settings.tone_enabled:
            return None
        adapter = settings.tone_adapter or BUNDLED_ADAPTER
        if not (adapter / "adapter_config.json").is_file():
            if settings.tone_adapter:
                msg = (
                    f"HELPDESK_TONE_ADAPTER={adapter} holds no adapter (adapter_config.json): "
                    "train one with `helpdesk tune --output <folder>` or clear the setting"
                )
                raise FileNotFoundError(msg)
            return None
        return cls(adapter, settings.data_dir, settings.tone_timeout_s)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def tokenizer(self):
        """The model's tokenizer, once loaded."""
        return self._tokenizer

    def _load_now(self) -> None:
        if self._model is not None:
            return
        with _torch_threads(self.threads):
            if self.adapter_dir is None:
                self._model, self._tokenizer = load_base_model(self.data_dir)
            else:
                self._model, self._tokenizer = load_tuned_model(self.data_dir, self.adapter_dir)

    async def load(self) -> None:
        """Load the model now (about a second; half a minute the very first time), so no answer waits for it."""

        def load_locked() -> None:
            with self._lock:
                self._load_now()

        await asyncio.to_thread(load_locked)

    def generate(self, text: str, max_seconds: float | None = None) -> Generation:
        """The model's reply to the rewrite prompt, greedy, as raw text (no guard); blocks, loads if needed."""
        with self._lock:
            self._load_now()
            return self._generate_locked(text, max_seconds)

    def _generate_locked(self, text: str, max_seconds: float | None) -> Generation:
        import torch

        prompt = prompt_ids(self._tokenizer, text)
        text_tokens = len(self._tokenizer.encode(text, add_special_tokens=False))
        # A reply more than max_ratio times as long as the text fails the guard anyway.
        budget = int(text_tokens * self.bounds.max_ratio) + 16
        with _torch_threads(self.threads), torch.inference_mode():
            output = self._model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
                max_new_tokens=budget,
                do_sample=False,
                max_time=max_seconds,
                prompt_lookup_num_tokens=PROMPT_LOOKUP_TOKENS,
                eos_token_id=self._tokenizer.eos_token_id,
                pad_token_id=self._tokenizer.eos_token_id,
            )
        reply = output[0, len(prompt) :].tolist()
        finished = bool(reply) and reply[-1] == self._tokenizer.eos_token_id
        return Generation(self._tokenizer.decode(reply, skip_special_tokens=True).strip(), finished)

    def _generate_before(self, text: str, deadline: float) -> Generation | None:
        """Like `generate`, but gives up (None) once `deadline` (time.monotonic) has passed."""
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return None
        try:
            self._load_now()
            remaining = deadline - time.monotonic()
            return self._generate_locked(text, remaining) if remaining > 0 else None
        finally:
            self._lock.release()

    async def rewrite(self, text: str) -> RewriteResult:
        """The text in the brand voice, or the text unchanged (fallback) if the guard fails or time runs out."""
        started = time.monotonic()

        def result(output: str, passed: bool, problems: tuple[str, ...]) -> RewriteResult:
            ms = round((time.monotonic() - started) * 1000, 1)
            if problems:
                log.info("tone rewrite not used (%s) after %.0f ms", "; ".join(problems), ms)
            return RewriteResult(text, output, passed, not passed, ms, problems)

        if not text.strip() or "\n" in text.strip():
            # Lists, code blocks and several paragraphs keep their layout as written.
            return result(text, False, ("not a single paragraph of prose",))
        if len(text.split()) > MAX_INPUT_WORDS:
            return result(text, False, (f"longer than {MAX_INPUT_WORDS} words",))
        deadline = started + self.timeout_s
        try:
            generation = await asyncio.wait_for(
                asyncio.to_thread(self._generate_before, text, deadline), self.timeout_s + TIMEOUT_GRACE_S
            )
        except TimeoutError:
            generation = None
        if generation is None or (not generation.finished and time.monotonic() >= deadline):
            return result(text, False, (f"took longer than {self.timeout_s:g} s",))
        if not generation.finished:
            return result(text, False, ("the rewrite was cut off",))
        verdict = check_rewrite(text, generation.text, self.bounds)
        if not verdict.passed:
            return result(text, False, verdict.problems)
        return result(generation.text, True, ())
