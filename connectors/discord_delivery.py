"""How far an /ask answer got to the asker, kept in its pending record so a takeover continues from there."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from bot.models import Answer


@dataclass(frozen=True)
class Delivery:
    """An answer, the Discord messages it is sent as, how many of them were sent, and the first one's id.

    Recorded as the pending record's `reply_id` before the first message is sent and after each one, so a
    replica taking the /ask over sends the same answer from the first message not sent (an answer's messages
    are sent one after the other: only the one in flight when its replica stopped can be sent twice).
    """

    answer: Answer
    messages: tuple[str, ...]
    sent: int = 0
    first_message_id: int | None = None

    def after_sending(self, message_id: int) -> Delivery:
        """This delivery once one more message (`message_id`) was sent."""
        return replace(self, sent=self.sent + 1, first_message_id=self.first_message_id or message_id)

    def to_reply_id(self) -> str:
        """As JSON text, for the pending record's `reply_id`."""
        return json.dumps(
            {
                "answer": self.answer.to_record(),
                "messages": list(self.messages),
                "sent": self.sent,
                "first_message_id": self.first_message_id,
            }
        )

    @classmethod
    def from_reply_id(cls, reply_id: str | None) -> Delivery | None:
        """The delivery `to_reply_id` gave, or None when none was recorded."""
        if reply_id is None:
            return None
        record = json.loads(reply_id)
        return cls(
            Answer.from_record(record["answer"]),
            tuple(record["messages"]),
            record["sent"],
            record["first_message_id"],
        )
