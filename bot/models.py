"""Platform-neutral question and answer types that connectors translate to and from."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation: who spoke ("user" or "assistant") and what was said."""

    role: str
    text: str


@dataclass(frozen=True)
class Question:
    """A question as the bot receives it, with the conversation so far for follow-ups."""

    text: str
    asker: str | None = None
    history: tuple[Turn, ...] = ()
    channel: str | None = None
    conversation_id: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class Citation:
    """A numbered source backing part of an answer."""

    n: int
    doc_id: str
    title: str
    source: str
    heading: str
    snippet: str
    updated_at: str | None

    def to_dict(self) -> dict:
        """The JSON shape connectors and `helpdesk ask --json` use."""
        return {k: v for k, v in asdict(self).items() if k != "heading"}


@dataclass
class Answer:
    """The bot's reply: text with [n] markers, the citations they point to, and how it was reached."""

    text: str
    citations: list[Citation]
    refused: bool
    confidence: float
    question: str = ""
    standalone_query: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    generator: str = "extractive"
    support: float = 0.0
    answerability: float | None = None

    def to_dict(self) -> dict:
        """The documented JSON object of `helpdesk ask --json`."""
        return {
            "answer": self.text,
            "refused": self.refused,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }

    def to_record(self) -> dict:
        """Every field as JSON values, which `from_record` turns back into the same answer."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict) -> Answer:
        """The answer `to_record` gave."""
        return cls(**{**record, "citations": [Citation(**citation) for citation in record["citations"]]})
