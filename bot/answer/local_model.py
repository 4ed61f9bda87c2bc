"""The packaged instruct model on llama.cpp, loaded once and shared behind a lock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

# The model's chat format (ChatML).
CHATML = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
TURN_END = ["<|im_end|>", "<|endoftext|>"]
USER_TURN = "<|im_start|>user\n"
STOP = [*TURN_END, "\n"]
CONTEXT_TOKENS = 4096


class LocalAnswerModel:
    """One llama.cpp model: the logits after a prompt, and a short greedy completion that reuses its cache.

    The model file is located (assembled once from its packages) and loaded on first use, or by `load()`.
    Calls are serialised: llama.cpp reads one prompt at a time, and a prompt read for its logits is not
    read again for the completion that follows it.
    """

    def __init__(self, model_file: Callable[[], Path], threads: int = 0, grammar: str | None = None):
        """`grammar` (GBNF, optional) constrains every completion, e.g. to a list of numbers."""
        self.model_file = model_file
        self.threads = threads
        self.grammar = grammar
        self.lock = asyncio.Lock()
        self._llm = None

    async def load(self) -> None:
        """Locate and load the model off the event loop."""
        if self._llm is None:
            async with self.lock:
                if self._llm is None:
                    self._llm = await asyncio.to_thread(self._load)

    def _load(self):
        from langchain_community.llms import LlamaCpp

        return LlamaCpp(
            model_path=str(self.model_file()),
            n_ctx=CONTEXT_TOKENS,
            n_threads=self.threads or None,
            n_batch=512,
            temperature=0.0,
            max_tokens=16,
            stop=STOP,
            grammar=self.grammar,
            verbose=False,
        )

    def token_ids(self, words: Sequence[str]) -> list[int]:
        """The single-token spellings among `words` in the model's vocabulary."""
        ids = set()
        for word in words:
            tokens = self._llm.client.tokenize(word.encode("utf-8"), add_bos=False, special=False)
            if len(tokens) == 1:
                ids.add(tokens[0])
        return sorted(ids)

    def _next_token_logits(self, prompt: str) -> np.ndarray:
        import llama_cpp

        client = self._llm.client
        tokens = client.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        cached = client.input_ids[: client.n_tokens].tolist()
        # Reuse the cache for the system turn at most. llama.cpp's logits differ in the last digits with
        # where reading resumes, so reading more of the cache would make the answerability of a question
        # depend on what was asked before it (0.5852 read after the system turn, 0.5877 after all but the
        # last token); reading the rest again costs the tokens of one article's excerpts.
        reusable = self._head_tokens(client, prompt)
        client.n_tokens = min(llama_cpp.Llama.longest_token_prefix(cached, tokens), reusable, len(tokens) - 1)
        client.eval(tokens[client.n_tokens :])
        logits = llama_cpp.llama_get_logits_ith(client.ctx, -1)
        return np.ctypeslib.as_array(logits, shape=(client.n_vocab(),)).copy()

    @staticmethod
    def _head_tokens(client, prompt: str) -> int:
        """How many tokens the prompt's system turn takes (the whole prompt when it has none)."""
        end = prompt.find(USER_TURN)
        head = prompt if end < 0 else prompt[: end + len(USER_TURN)]
        return len(client.tokenize(head.encode("utf-8"), add_bos=False, special=True))

    async def next_token_logits(self, prompt: str) -> np.ndarray:
        """The model's logits for the token after `prompt` (a full ChatML prompt), the same whatever was read
        before it."""
        await self.load()
        async with self.lock:
            return await asyncio.to_thread(self._next_token_logits, prompt)

    async def complete(self, prompt: str) -> str:
        """A short greedy completion of `prompt`, up to the end of its first line."""
        await self.load()
        async with self.lock:
            return await self._llm.ainvoke(prompt)

    def _free_text(self, prompt: str, max_tokens: int) -> str:
        result = self._llm.client.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, stop=TURN_END
        )  # fmt: skip
        return result["choices"][0]["text"]

    async def free_text(self, prompt: str, max_tokens: int) -> str:
        """A greedy completion of `prompt` without the grammar, up to the end of the model's turn.

        A prompt that starts like the one read before reuses the cache for what they share.
        """
        await self.load()
        async with self.lock:
            return await asyncio.to_thread(self._free_text, prompt, max_tokens)


def log_sum_exp(values: np.ndarray) -> float:
    """log(sum(exp(values))), computed stably."""
    return float(np.logaddexp.reduce(values))
