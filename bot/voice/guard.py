"""The fact guard: a tone rewrite may change an answer's wording, never its facts, citations or sense."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.text import CODE, MARKER, URL, facts, normalise, proper_names, strip_markers
from bot.voice.words import dropped_words, invented_words

# A menu path such as "Settings → Billing → Change plan", checked as the words around each arrow.
MENU_PATH = re.compile(r"[^\s\[\]]+(?: → [^\s\[\]]+)+")
FENCED_CODE = re.compile(r"```.*?```", re.DOTALL)
# "Two-step" and "2-step" state the same number.
NUMBER_WORDS = dict(
    zip(
        ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"],
        map(str, range(1, 13)),
        strict=True,
    )
)
SPELLED_NUMBER = re.compile(rf"\b({'|'.join(NUMBER_WORDS)})\b", re.IGNORECASE)
# How an answer says that the knowledge base has nothing on the question, and how a rewrite may say it.
NOT_FOUND = re.compile(
    r"couldn't find|could not find|does not contain|doesn't contain|no information|not in the knowledge base",
    re.IGNORECASE,
)
STILL_NOT_FOUND = re.compile(
    r"couldn't|could not|can't|cannot|wasn't able|was not able|unable|don't|doesn't|do not|does not"
    r"|no information|nothing (?:about|on)|sorry|unfortunately",
    re.IGNORECASE,
)

# Words that negate a statement: a rewrite keeps at least as many ("is not supported" → "isn't supported").
NEGATION = re.compile(
    r"\b(?:not|never|no|none|nothing|cannot|without|neither|nor|unable)\b|n['’]t\b", re.IGNORECASE
)
# Words that limit how far a statement goes ("Most requests are decided…", "up to 5 users", "may differ"). A
# rewrite of a limited statement keeps a limit; "can" and "could" say what "may" says.
_LIMITS = (
    r"most|usually|typically|often|generally|normally|some|many|few|up to|at most|no more than"
    r"|approximately|roughly|at least|or more|may|might"
)
_NOT_A_LIMIT = r"(?! (?:common|recent|popular|likely|important)\b)"  # "the most recent version"
LIMIT = re.compile(rf"\b(?:{_LIMITS})\b{_NOT_A_LIMIT}", re.IGNORECASE)
LIMIT_KEPT = re.compile(rf"\b(?:{_LIMITS}|can|could|never more than)\b{_NOT_A_LIMIT}", re.IGNORECASE)


@dataclass(frozen=True)
class LengthBounds:
    """How much shorter or longer than the original a rewrite may be, in words."""

    min_ratio: float = 0.6
    max_ratio: float = 2.0


DEFAULT_BOUNDS = LengthBounds()


@dataclass(frozen=True)
class GuardVerdict:
    """Whether a rewrite kept every fact, and what it got wrong if not."""

    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def markers(text: str) -> set[str]:
    """The citation markers of a text, as "[n]"."""
    return {f"[{n}]" for n in MARKER.findall(text)}


def menu_paths(text: str) -> set[str]:
    """Menu paths (A → B → C) as the words around their arrows, without trailing punctuation."""
    return {m.group(0).rstrip(".,;:!?") for m in MENU_PATH.finditer(strip_markers(text))}


def must_keep(text: str) -> list[str]:
    """Everything the guard checks a rewrite of `text` for, in order of appearance: facts, markers, names."""
    plain = normalise(text)
    paths = menu_paths(plain)
    # A name that is part of a menu path ("Settings" in "Settings → Billing") is kept with the path.
    names = {name for name in proper_names(plain) if not any(mentions(path, name) for path in paths)}
    items = facts(plain) | markers(plain) | names | paths
    return sorted(items, key=lambda item: (plain.find(item), item))


def inventable_facts(text: str) -> set[str]:
    """Numbers, URLs and e-mail addresses: the facts a rewrite must never add."""
    return {fact for fact in facts(text) if not CODE.fullmatch(fact)}


def mentions(text: str, name: str) -> bool:
    """True when `text` names `name` as whole words, in the singular or the plural ("PDF", "PDFs")."""
    stem = re.escape(name.removesuffix("s"))
    return re.search(rf"(?<!\w){stem}s?(?!\w)", text) is not None


def is_not_found(text: str) -> bool:
    """True for a refusal: an answer saying the knowledge base has nothing on the question."""
    return bool(NOT_FOUND.search(text))


def spelled_numbers(text: str) -> set[str]:
    """The numbers one to twelve that `text` writes out as words, as digits."""
    return {NUMBER_WORDS[m.group(1).lower()] for m in SPELLED_NUMBER.finditer(text)}


def meaning_problems(before: str, after: str) -> list[str]:
    """Negations and limits of a statement that a rewrite lost: the items stay, the sense would not.

    "Most refund requests are decided within 2 business days" must not become "You'll get your refund
    within 2 business days"; "Custom CSS is not supported" must not lose its "not".
    """
    before, after = URL.sub(" ", strip_markers(before)), URL.sub(" ", strip_markers(after))
    problems = []
    negations_before, negations_after = len(NEGATION.findall(before)), len(NEGATION.findall(after))
    if negations_after < negations_before:
        problems.append(
            f"loses a negation ({negations_before} in the answer, {negations_after} in the rewrite)"
        )
    limits = LIMIT.findall(before)
    if limits and not is_not_found(before) and not LIMIT_KEPT.search(after):
        problems.append(f"loses a limit ({', '.join(dict.fromkeys(m.lower() for m in limits))})")
    return problems


def check_rewrite(
    original: str,
    rewrite: str,
    bounds: LengthBounds = DEFAULT_BOUNDS,
    voice: frozenset[str] | None = None,
    keep_words: bool = True,
) -> GuardVerdict:
    """Check that `rewrite` keeps every fact, citation, name, negation and limit of `original`, adding none.

    With `voice` (the brand's usual wording, see bot.voice.words) a rewrite may add no word that neither the
    original nor the voice has: "decided within 2 business days" must not become "refund a small amount
    within 2 business days". With `keep_words` every word of the original that carries its sense stays:
    the voice adds warmth around the answer and never rewords it ("decided" must not become "go out").
    """
    before, after = normalise(original), normalise(rewrite)
    if not after:
        return GuardVerdict(("the rewrite is empty",))
    problems: list[str] = []
    missing = sorted(facts(before) - facts(after) - spelled_numbers(after))
    if missing:
        problems.append(f"drops {', '.join(missing)}")
    added = sorted(inventable_facts(after) - inventable_facts(before) - spelled_numbers(before))
    if added:
        problems.append(f"adds {', '.join(added)}")
    lost_markers, new_markers = markers(before) - markers(after), markers(after) - markers(before)
    if lost_markers:
        problems.append(f"drops citation {' '.join(sorted(lost_markers))}")
    if new_markers:
        problems.append(f"adds citation {' '.join(sorted(new_markers))}")
    lost = sorted(n for n in proper_names(before) | menu_paths(before) if not mentions(after, n))
    if lost:
        problems.append(f"drops {', '.join(lost)}")
    # A capitalised word that the original has in lower case ("Rate" for "rate") names nothing new.
    invented = sorted(
        n for n in proper_names(after) if not mentions(before, n) and not mentions(before, n.lower())
    )
    if invented:
        problems.append(f"adds {', '.join(invented)}")
    lost_code = [block for block in FENCED_CODE.findall(original) if block not in rewrite]
    if lost_code:
        problems.append("changes a code block")
    problems.extend(meaning_problems(before, after))
    if keep_words and not is_not_found(before) and (lost_words := dropped_words(before, after)):
        problems.append(f"drops {', '.join(lost_words)} (the voice may add words, not replace them)")
    if voice is not None and (new_words := invented_words(before, after, voice)):
        problems.append(
            f"invents {', '.join(new_words)} (neither the answer's words nor the brand's usual ones)"
        )
    words_before, words_after = len(before.split()), len(after.split())
    if words_after < bounds.min_ratio * words_before:
        problems.append(f"too short ({words_after} words for {words_before})")
    if words_after > bounds.max_ratio * words_before:
        problems.append(f"too long ({words_after} words for {words_before})")
    if is_not_found(before) and not STILL_NOT_FOUND.search(after):
        problems.append("no longer says the answer was not found")
    return GuardVerdict(tuple(problems))
