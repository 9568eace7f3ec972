"""Conversation stores: the ``ConversationStore`` protocol and the SQLite default (the
Redis store for several workers is :mod:`cxbot.conversation.redis_store`).

A turn loads the state, computes its events, then commits state and events in one
transaction guarded by the state's version: a turn that raised commits nothing, and two
writers of one conversation cannot both win (the loser raises :class:`ConcurrentUpdate`
and the assistant runs its turn again on the new state, so a second message is
serialised, never lost). The version is the correctness guarantee; :meth:`lock` only
saves the work a losing turn would throw away.

A turn that carries the client's message id commits a :class:`Receipt` with its reply in
the same transaction: a retry of that message finds the receipt and gets the same reply
without a second turn, even when the first attempt's worker died after the commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.conversation.events import Event, event_from_dict, event_to_dict
from cxbot.conversation.state import ConversationState
from cxbot.errors import BackendError

__all__ = ["ConcurrentUpdate", "ConversationStore", "Receipt", "SQLiteConversationStore"]


class ConcurrentUpdate(BackendError):
    """Another writer committed this conversation first; reload and retry the turn."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The reply to one client message id, kept so that a retry gets it again."""

    message_id: str
    digest: str
    """SHA-256 of the message text: the same id with another text is not a retry."""
    reply: str
    """The reply as JSON (:func:`cxbot.conversation.receipts.reply_to_json`)."""


class ConversationStore(Protocol):
    """Keeps each conversation's state, its event log and the replies to message ids."""

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

    def commit(
        self,
        state: ConversationState,
        events: Sequence[Event],
        *,
        receipt: Receipt | None = None,
    ) -> ConversationState:
        """Store ``state`` and append ``events`` (and ``receipt``) if the stored version
        is still ``state.version``; else :class:`ConcurrentUpdate` and nothing is stored."""
        ...

    def events(self, conversation_id: str) -> list[Event]: ...

    def receipt(self, conversation_id: str, message_id: str) -> Receipt | None:
        """The committed reply to ``message_id`` in the conversation, if still kept."""
        ...

    def lock(self, conversation_id: str) -> AbstractContextManager[None]:
        """Held while a turn of the conversation runs, so that its turns run one at a time
        (in this process, or in every process sharing the store)."""
        ...

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
CREATE TABLE IF NOT EXISTS receipts (
    conversation_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    reply TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, message_id)
);
CREATE INDEX IF NOT EXISTS receipts_by_age ON receipts (created_at);
"""


class SQLiteConversationStore:
    """Conversation state in one SQLite file; survives process restarts.

    Its :meth:`lock` serialises the turns of one process; other processes on the same
    host sharing the file are kept correct by the version check alone.
    """

    def __init__(self, path: str | Path, *, message_ttl_s: float = 86400.0) -> None:
        self.path = Path(path)
        self.message_ttl_s = message_ttl_s
        self._conn = ThreadLocalSQLite(self.path)
        self._conn().executescript(_SCHEMA)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def load(self, conversation_id: str) -> ConversationState:
        row = (
            self._conn()
            .execute("SELECT state FROM conversations WHERE id = ?", (conversation_id,))
            .fetchone()
        )
        if row is None:
            return ConversationState(conversation_id=conversation_id)
        return ConversationState.from_json(json.loads(row[0]))

    def commit(
        self,
        state: ConversationState,
        events: Sequence[Event],
        *,
        receipt: Receipt | None = None,
    ) -> ConversationState:
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
            if receipt is not None:
                conn.execute(
                    "DELETE FROM receipts WHERE created_at < ?", (now - self.message_ttl_s,)
                )
                if self._has_receipt(conn, new.conversation_id, receipt.message_id):
                    conn.execute("ROLLBACK")
                    raise ConcurrentUpdate(
                        f"message {receipt.message_id!r} of conversation "
                        f"{new.conversation_id!r} was answered already"
                    )
                conn.execute(
                    "INSERT INTO receipts (conversation_id, message_id, digest, reply, "
                    "created_at) VALUES (?, ?, ?, ?, ?)",
                    (new.conversation_id, receipt.message_id, receipt.digest, receipt.reply, now),
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

    def receipt(self, conversation_id: str, message_id: str) -> Receipt | None:
        row = (
            self._conn()
            .execute(
                "SELECT digest, reply FROM receipts WHERE conversation_id = ? "
                "AND message_id = ? AND created_at >= ?",
                (conversation_id, message_id, time.time() - self.message_ttl_s),
            )
            .fetchone()
        )
        return Receipt(message_id, row[0], row[1]) if row else None

    @staticmethod
    def _has_receipt(conn: sqlite3.Connection, conversation_id: str, message_id: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM receipts WHERE conversation_id = ? AND message_id = ?",
            (conversation_id, message_id),
        ).fetchone()
        return row is not None

    @contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(conversation_id, threading.Lock())
        with lock:
            yield

    def close(self) -> None:
        self._conn.close()
