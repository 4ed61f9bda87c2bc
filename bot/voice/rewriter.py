"""The tone rewriter: restyles an answer in the brand voice with the tuned small model, behind the fact guard."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings
from bot.voice.copy_bias import DEFAULT_COPY_BIAS
from bot.voice.guard import DEFAULT_BOUNDS, GuardVerdict, LengthBounds, check_rewrite
from bot.voice.llama import LlamaToneModel, llama_cpp_installed
from bot.voice.model import ADAPTER_CONFIG, BUNDLED_ADAPTER, Generation, TransformersToneModel
from bot.voice.words import VOICE_FILE, load_voice_words, opening
from knowledge.tables import has_table_row

log = logging.getLogger(__name__)

# Answers longer than this are posted as written: the model learnt on short answers and would be slow.
MAX_INPUT_WORDS = 200
# Collecting the worker's result after its own deadline may take a moment more.
TIMEOUT_GRACE_S = 0.5
BACKENDS = ("auto", "llama.cpp", "transformers")


def resolve_backend(backend: str) -> str:
    """The engine that runs the tone model: llama.cpp when installed (auto), or the one asked for."""
    if backend not in BACKENDS:
        msg = f"Unknown tone backend {backend!r}: choose one of {', '.join(BACKENDS)}"
        raise ValueError(msg)
    if backend == "auto":
        return "llama.cpp" if llama_cpp_installed() else "transformers"
    if backend == "llama.cpp" and not llama_cpp_installed():
        msg = "HELPDESK_TONE_BACKEND=llama.cpp needs llama-cpp-python: run scripts/install.sh, or choose auto"
        raise RuntimeError(msg)
    return backend


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
        backend: str = "auto",
        beams: int = 1,
        copy_bias: float = DEFAULT_COPY_BIAS,
        keep_words: bool = True,
    ):
        """`adapter_dir=None` rewrites with the untuned base model (for comparisons only).

        `backend` runs the model on llama.cpp (the packaged GGUF with the adapter merged into it) or on
        transformers (float32, or bfloat16 where native); `auto` takes llama.cpp when it is installed.
        `threads` is the thread count while rewriting (None: every core). `beams` above 1 decodes with beam
        search over that many candidate replies, at two to three times the time for 3; whether it keeps facts
        better than greedy decoding depends on the adapter. `copy_bias` is the logit bias greedy decoding gives
        the next token of a passage of the answer the rewrite has begun to copy (0: plain greedy).
        `keep_words` posts only rewrites that keep every word carrying the answer's sense (see check_rewrite).
        """
        self.adapter_dir = Path(adapter_dir) if adapter_dir else None
        self.data_dir = Path(data_dir)
        self.timeout_s = timeout_s
        self.bounds = bounds
        self.threads = threads
        self.backend = resolve_backend(backend)
        self.beams = beams
        self.copy_bias = copy_bias
        self.keep_words = keep_words
        self.voice = self._voice_words()
        self._model: LlamaToneModel | TransformersToneModel | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ToneRewriter | None:
        """The configured rewriter; None when rewriting is off or no adapter is bundled or configured."""
        if not settings.tone_enabled:
            return None
        adapter = settings.tone_adapter or BUNDLED_ADAPTER
        if not (adapter / ADAPTER_CONFIG).is_file():
            if settings.tone_adapter:
                msg = (
                    f"HELPDESK_TONE_ADAPTER={adapter} holds no adapter ({ADAPTER_CONFIG}): "
                    "train one with `helpdesk tune --output <folder>` or clear the setting"
                )
                raise FileNotFoundError(msg)
            return None
        return cls(
            adapter,
            settings.data_dir,
            settings.tone_timeout_s,
            threads=settings.tone_threads or None,
            backend=settings.tone_backend,
            beams=settings.tone_beams,
            copy_bias=settings.tone_copy_bias,
        )

    def _voice_words(self) -> frozenset[str] | None:
        """The adapter's voice words; none (every added word fails the guard) for an adapter without them."""
        if self.adapter_dir is None:
            return None  # the untuned base model has no brand voice to check against
        voice = load_voice_words(self.adapter_dir)
        if voice is None:
            log.warning(
                "The tone adapter %s has no %s, so every rewrite that adds a word falls back to the answer "
                "as written: run `helpdesk tune` again with the same options to write it",
                self.adapter_dir,
                VOICE_FILE,
            )
        return voice or frozenset()

    def check(self, text: str, rewrite: str) -> GuardVerdict:
        """The fact guard's verdict on `rewrite` of `text`, with this rewriter's length bounds and brand voice."""
        return check_rewrite(text, rewrite, self.bounds, self.voice, self.keep_words)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def count_tokens(self, text: str) -> int:
        """How many tokens the model reads for `text`; loads the model if needed."""
        with self._lock:
            return self._load_now().count_tokens(text)

    def _load_now(self) -> LlamaToneModel | TransformersToneModel:
        if self._model is None:
            engine = LlamaToneModel if self.backend == "llama.cpp" else TransformersToneModel
            self._model = engine(self.adapter_dir, self.data_dir, self.threads, self.beams)
        return self._model

    async def load(self) -> None:
        """Load the model now (about a second; half a minute the very first time), so no answer waits for it."""

        def load_locked() -> None:
            with self._lock:
                self._load_now()

        await asyncio.to_thread(load_locked)

    def generate(self, text: str, max_seconds: float | None = None) -> Generation:
        """The model's reply to the rewrite prompt, as raw text (no guard); blocks, loads if needed."""
        with self._lock:
            return self._generate_locked(text, max_seconds)

    def _generate_locked(self, text: str, max_seconds: float | None) -> Generation:
        model = self._load_now()
        # A reply more than max_ratio times as long as the text fails the guard anyway.
        budget = int(model.count_tokens(text) * self.bounds.max_ratio) + 16
        return model.generate(text, budget, max_seconds, self.copy_bias)

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

    @staticmethod
    def kept_as_written(text: str) -> str | None:
        """Why `text` is posted without a rewrite (its layout or length), or None when it may be rewritten."""
        if not text.strip() or "\n" in text.strip():
            return "not a single paragraph of prose"  # lists, code blocks and paragraphs keep their layout
        if has_table_row(text):
            return "a table row keeps its layout"
        if len(text.split()) > MAX_INPUT_WORDS:
            return f"longer than {MAX_INPUT_WORDS} words"
        return None

    async def rewrite(self, text: str) -> RewriteResult:
        """The text in the brand voice, or the text unchanged (fallback) if the guard fails or time runs out."""
        started = time.monotonic()

        def result(output: str, passed: bool, problems: tuple[str, ...]) -> RewriteResult:
            ms = round((time.monotonic() - started) * 1000, 1)
            if problems:
                log.info("tone rewrite not used (%s) after %.0f ms", "; ".join(problems), ms)
            return RewriteResult(text, output, passed, not passed, ms, problems)

        if reason := self.kept_as_written(text):
            return result(text, False, (reason,))
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
        verdict = self.check(text, generation.text)
        if verdict.passed:
            return result(generation.text, True, ())
        # The rewrite reworded the answer; its opening alone, before the answer as written, still speaks
        # in the brand's voice without touching a fact.
        framed = self.framed(text, generation.text)
        if framed is not None:
            return result(framed, True, ())
        return result(text, False, verdict.problems)

    def framed(self, text: str, rewrite: str) -> str | None:
        """The rewrite's opening in the brand voice, then `text` unchanged; None if there is no such opening
        or the guard turns it down."""
        lead = opening(text, rewrite, self.voice or frozenset())
        if lead is None:
            return None
        framed = f"{lead} {text}"
        return framed if self.check(text, framed).passed else None
