"""Conversation stores: the ``ConversationStore`` protocol and the SQLite default.

A turn loads the state, computes its events, then commits state and events in one
transaction guarded by the state's version: a turn that raised commits nothing, and two
writers of one conversation cannot both win.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.conversation.events import Event, event_from_dict, event_to_dict
from cxbot.conversation.state import ConversationState
from cxbot.errors import BackendError

__all__ = ["ConcurrentUpdate", "ConversationStore", "SQLiteConversationStore"]


class ConcurrentUpdate(BackendError):
    """Another writer committed this conversation first; reload and retry the turn."""


class ConversationStore(Protocol):
    """Keeps each conversation's state and its event log."""

    def load(self, conversation_id: str) -> ConversationState: ...

    def link_customer(self, customer_id: str, conversation_id: str, *, expires_at: float) -> None:
        """Point ``customer_id`` at their latest conversation until ``expires_at`` (epoch
        seconds), so that another channel can continue it."""
        ...

    def linked_conversation(self, customer_id: str, *, now: float) -> str | None:
        """The conversation ``customer_id`` was last linked to, unless expired at ``now``."""
        ...

    def record_verification(self, customer_id: str, *, succeeded: bool, at: float) -> None:
        """Record a failed identity verification of ``customer_id`` at ``at``; a success
        forgets the failures."""
        ...

    def verification_failures(self, customer_id: str, *, since: float) -> int:
        """Failed verifications of ``customer_id`` recorded at ``since`` or later."""
        ...

    def commit(self, state: ConversationState, events: Sequence[Event]) -> ConversationState: ...

    def events(self, conversation_id: str) -> list[Event]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_links (
    customer_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS verification_failures (
    customer_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS verification_failures_by_customer
    ON verification_failures (customer_id, at);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    customer_id TEXT,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    turn INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""


class SQLiteConversationStore:
    """Conversation state in one SQLite file; survives process restarts."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = ThreadLocalSQLite(self.path)
        self._conn().executescript(_SCHEMA)

    def load(self, conversation_id: str) -> ConversationState:
        row = (
            self._conn()
            .execute("SELECT state FROM conversations WHERE id = ?", (conversation_id,))
            .fetchone()
        )
        if row is None:
            return ConversationState(conversation_id=conversation_id)
        return ConversationState.from_json(json.loads(row[0]))

    def commit(self, state: ConversationState, events: Sequence[Event]) -> ConversationState:
        """Store ``state`` (computed from the loaded version) and append ``events``."""
        new = replace(state, version=state.version + 1)
        conn = self._conn()
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT version FROM conversations WHERE id = ?", (state.conversation_id,)
            ).fetchone()
            current = row[0] if row else 0
            if current != state.version:
                conn.execute("ROLLBACK")
                raise ConcurrentUpdate(
                    f"conversation {state.conversation_id!r} changed (version {current}, "
                    f"expected {state.version})"
                )
            conn.execute(
                "INSERT INTO conversations (id, customer_id, version, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "customer_id = excluded.customer_id, version = excluded.version, "
                "state = excluded.state, updated_at = excluded.updated_at",
                (new.conversation_id, new.customer_id, new.version, json.dumps(new.to_json()), now),
            )
            seq0 = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE conversation_id = ?",
                (new.conversation_id,),
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO events (conversation_id, seq, turn, kind, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        new.conversation_id,
                        seq0 + i + 1,
                        new.turn,
                        e.kind,
                        json.dumps(event_to_dict(e)),
                        now,
                    )
                    for i, e in enumerate(events)
                ],
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise BackendError(f"conversation store {self.path}: {exc}") from exc
        return new

    def link_customer(self, customer_id: str, conversation_id: str, *, expires_at: float) -> None:
        self._write(
            "INSERT INTO customer_links (customer_id, conversation_id, expires_at) "
            "VALUES (?, ?, ?) ON CONFLICT(customer_id) DO UPDATE SET "
            "conversation_id = excluded.conversation_id, expires_at = excluded.expires_at",
            (customer_id, conversation_id, expires_at),
        )

    def linked_conversation(self, customer_id: str, *, now: float) -> str | None:
        row = (
            self._conn()
            .execute(
                "SELECT conversation_id FROM customer_links "
                "WHERE customer_id = ? AND expires_at > ?",
                (customer_id, now),
            )
            .fetchone()
        )
        return str(row[0]) if row else None

    def record_verification(self, customer_id: str, *, succeeded: bool, at: float) -> None:
        if succeeded:
            self._write("DELETE FROM verification_failures WHERE customer_id = ?", (customer_id,))
        else:
            self._write("INSERT INTO verification_failures VALUES (?, ?)", (customer_id, at))

    def verification_failures(self, customer_id: str, *, since: float) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM verification_failures WHERE customer_id = ? AND at >= ?",
                (customer_id, since),
            )
            .fetchone()
        )
        return int(row[0])

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self._conn().execute(sql, params)  # autocommit: one statement, one transaction
        except sqlite3.Error as exc:
            raise BackendError(f"conversation store {self.path}: {exc}") from exc

    def events(self, conversation_id: str) -> list[Event]:
        rows = self._conn().execute(
            "SELECT data FROM events WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        )
        return [event_from_dict(json.loads(data)) for (data,) in rows]

    def close(self) -> None:
        self._conn.close()
