"""A reply kept for its client message id: the :class:`~cxbot.types.Reply` as JSON and back,
and the digest that tells a retry (same text) from a reused id (another text)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from cxbot.conversation.events import event_from_dict, event_to_dict
from cxbot.conversation.store import Receipt
from cxbot.types import Citation, Reply

__all__ = ["message_digest", "receipt_for", "reply_from_json", "reply_to_json"]


def message_digest(text: str) -> str:
    """SHA-256 of the (cleaned) message text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reply_to_json(reply: Reply) -> str:
    data: dict[str, Any] = {f.name: getattr(reply, f.name) for f in dataclasses.fields(reply)}
    data["citations"] = [dataclasses.asdict(c) for c in reply.citations]
    data["events"] = [event_to_dict(e) for e in reply.events]
    data["handoff"] = reply.handoff.model_dump(mode="json") if reply.handoff else None
    data["trace"] = dict(reply.trace)
    return json.dumps(data, separators=(",", ":"))


def reply_from_json(text: str) -> Reply:
    from cxbot.handoff.summary import HandoffSummary

    data: dict[str, Any] = json.loads(text)
    data["citations"] = tuple(Citation(**c) for c in data.get("citations", ()))
    data["events"] = tuple(event_from_dict(e) for e in data.get("events", ()))
    handoff = data.get("handoff")
    data["handoff"] = HandoffSummary.model_validate(handoff) if handoff else None
    known = {f.name for f in dataclasses.fields(Reply)}
    return Reply(**{k: v for k, v in data.items() if k in known})


def receipt_for(message_id: str, text: str, reply: Reply) -> Receipt:
    """What the store keeps for ``message_id``: the digest of ``text`` and ``reply``."""
    return Receipt(message_id, message_digest(text), reply_to_json(reply))
