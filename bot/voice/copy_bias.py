"""Copy bias: greedy decoding nudged to finish a passage of the answer that the rewrite has begun to copy."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

# A rewrite that has just written two or more tokens of the answer word for word is most likely quoting it;
# the token that follows them in the answer gets this much added to its logit, so a begun clause, citation
# or name is more often finished ("Change plan [1]") than cut short. Stronger biases keep still more facts
# but turn the rewrite into a copy of the answer, losing the brand voice (see the README's figures).
DEFAULT_COPY_BIAS = 1.0
LEAST_RUN = 2


class CopyBias:
    """Additive logit biases for one reply, from the longest run of its last tokens found in the answer."""

    def __init__(self, answer_tokens: list[int], strength: float):
        self.answer = list(answer_tokens)
        self.strength = strength
        self._positions: dict[int, list[int]] = defaultdict(list)
        for position, token in enumerate(self.answer[:-1]):
            self._positions[token].append(position)

    def next_tokens(self, reply: list[int]) -> set[int]:
        """The answer's tokens that follow the longest copied run (≥ 2 tokens) ending the reply; none at strength 0."""
        if self.strength <= 0 or len(reply) < LEAST_RUN:
            return set()
        longest, following = 0, set()
        for end in self._positions.get(reply[-1], ()):
            run = 1
            while run <= end and run < len(reply) and self.answer[end - run] == reply[-1 - run]:
                run += 1
            if run < LEAST_RUN or run < longest:
                continue
            if run > longest:
                longest, following = run, set()
            following.add(self.answer[end + 1])
        return following

    def apply(self, logits: np.ndarray, reply: list[int]) -> np.ndarray:
        """The logits with this step's biases added (the input is left as it is)."""
        following = self.next_tokens(reply)
        if not following:
            return logits
        biased = np.array(logits, dtype=np.float32, copy=True)
        biased[list(following)] += self.strength
        return biased
