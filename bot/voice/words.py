"""The brand's usual wording: the words its rewrites add to answers, learned from the tuning pairs."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from bot.answer.text import CODE, URL, normalise, split_sentences, strip_markers

VOICE_FILE = "voice_words.json"
WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
# Words that carry no fact of their own: a rewrite may add them. (A lost negation or limit is the guard's
# meaning check.)
FUNCTION_WORDS = frozenset(
    re.findall(
        r"\w+",
        """
        a about above after again against all already also am an and another any anyone anything are as at
        be because been before being below between both but by can could did do does doing down during each
        either else even ever every everybody everyone everything few for from further had has have having
        he her here hers herself him himself his how i if in into is it its itself just many may me might
        more most much my myself neither no nor not now of off on once one ones only or other our ours
        ourselves out over own same she should so some somebody someone something still such than that the
        their theirs them themselves then there these they this those through to too under until up upon us
        very was we were what when where whether which while who whom whose why will with within without
        would yet you your yours yourself yourselves
        """,
    )
)
CONTRACTION = re.compile(r"n't$|'(?:s|ll|re|ve|d|m)$")
IRREGULAR_NEGATIONS = {"can't": "can", "won't": "will", "shan't": "shall"}
# Endings stripped so that "days" and "day", "billed" and "bill" count as one word: (ending, replacement,
# shortest stem left), longest ending first. A final "s" or "e" goes last ("uses", "use" and "used": "us").
ENDINGS = (
    ("sses", "ss", 2),
    ("ies", "y", 2),
    ("ied", "y", 2),
    ("ing", "", 2),
    ("ed", "", 2),
    ("es", "", 2),
    ("ly", "", 4),
)
MIN_STEM = 2


def word_stem(word: str) -> str:
    """A crude stem of a lower-case word without its contraction: the same for its common inflections."""
    for ending, replacement, shortest in ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= shortest:
            return word[: -len(ending)] + replacement
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > MIN_STEM + 1:
        word = word[:-1]
    return word[:-1] if word.endswith("e") and len(word) > MIN_STEM else word


def _content_words_by_stem(text: str) -> dict[str, str]:
    """Each word of `text` that can carry a fact, by stem: no function words, markers, URLs or code."""
    prose = CODE.sub(" ", URL.sub(" ", strip_markers(normalise(text))))
    words: dict[str, str] = {}
    for word in WORD.findall(prose):
        lower = word.lower().replace("’", "'")
        bare = IRREGULAR_NEGATIONS.get(lower) or CONTRACTION.sub("", lower)
        if bare not in FUNCTION_WORDS:
            words.setdefault(word_stem(bare), bare)
    return words


def content_words(text: str) -> set[str]:
    """The stems of the words of `text` that can carry a fact: no function words, markers, URLs or code."""
    return set(_content_words_by_stem(text))


def learn_voice_words(pairs: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Every word that an on-brand rewrite adds to its plain answer, over (plain, on-brand) pairs."""
    added: set[str] = set()
    for plain, on_brand in pairs:
        added |= content_words(on_brand) - content_words(plain)
    return frozenset(added)


def invented_words(original: str, rewrite: str, voice: frozenset[str]) -> list[str]:
    """Words of `rewrite` that neither `original` nor the brand's usual wording (stems) has, as written."""
    added = _content_words_by_stem(rewrite)
    return sorted(added[stem] for stem in added.keys() - content_words(original) - voice)


def dropped_words(original: str, rewrite: str) -> list[str]:
    """Words of `original` that carry its sense (no function words) and that `rewrite` no longer has."""
    kept = _content_words_by_stem(original)
    return sorted(kept[stem] for stem in kept.keys() - content_words(rewrite))


def opening(answer: str, rewrite: str, voice: frozenset[str]) -> str | None:
    """The rewrite's opening in the brand's voice ("Thanks for asking!"), before it starts on the answer.

    Its leading sentences count while every word they carry is a voice word and none is the answer's.
    """
    answer_words, kept = content_words(answer), []
    for sentence in split_sentences(strip_markers(rewrite)):
        words = content_words(sentence)
        if words & answer_words or not words <= voice:
            break
        kept.append(sentence)
    return " ".join(kept) or None


def save_voice_words(adapter_dir: Path, words: frozenset[str]) -> None:
    """Write the voice words beside an adapter, as a sorted JSON list, replacing any previous file whole."""
    target = Path(adapter_dir) / VOICE_FILE
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(sorted(words), indent=0) + "\n")
    partial.chmod(0o644)
    os.replace(partial, target)


def load_voice_words(adapter_dir: Path) -> frozenset[str] | None:
    """The voice words saved beside an adapter, or None when it has none."""
    path = Path(adapter_dir) / VOICE_FILE
    return frozenset(json.loads(path.read_text())) if path.is_file() else None
