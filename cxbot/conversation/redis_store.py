"""Conversation state in Redis, shared by every worker of a deployment.

Stateless workers behind a load balancer each build an assistant with the same
``storage.redis_url``; any of them may take the next message of any conversation.

- State and version: a hash per conversation (``version``, ``state`` JSON, ``customer_id``,
  ``updated_at``); the event log: a list. A commit is one Lua script, so it is atomic
  like the SQLite transaction: it compares the stored version with the one the turn
  loaded, and on a match writes the state, appends the events and keeps the message
  id's receipt; on a mismatch it writes nothing and the turn is run again
  (:class:`~cxbot.conversation.store.ConcurrentUpdate`).
- Locks: ``SET key token NX PX ttl``, renewed by a timer thread every third of the TTL
  while the turn runs and released by compare-and-delete, so a worker killed mid-turn
  holds its conversation for at most ``storage.lock_ttl_s``. The lock only saves work:
  if it expires under a slow turn, the version check still lets one writer win.
- Receipts: one key per (conversation, message id) with ``storage.message_ttl_s``.
- Per customer: the link to their latest conversation (a JSON string, expiring in Redis
  too when its time is in the future) and their failed verifications (a sorted set scored
  by time).

Every key of a conversation carries the id as a hash tag (``cxbot:{conv-42}:state``), so
one conversation's keys live on one shard of a Redis Cluster and its scripts may touch
them together.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from cxbot._redis import connect, redis_errors, safe_url
from cxbot.conversation.events import Event, event_from_dict, event_to_dict
from cxbot.conversation.state import ConversationState
from cxbot.conversation.store import ConcurrentUpdate, Receipt
from cxbot.errors import BackendError

__all__ = ["ConversationBusy", "RedisConversationStore"]

log = logging.getLogger("cxbot.conversation")

_COMMIT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
if ARGV[5] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return {-1, current} end
redis.call('HSET', KEYS[1], 'version', current + 1, 'state', ARGV[2],
           'customer_id', ARGV[3], 'updated_at', ARGV[4])
for i = 7, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6]) end
return {1, current + 1}
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class ConversationBusy(BackendError):
    """Another worker held the conversation's lock for longer than the wait allows."""


class RedisConversationStore:
    """Conversation state, event logs, locks and message receipts in Redis."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cxbot",
        lock_ttl_s: float = 10.0,
        message_ttl_s: int = 86400,
        lock_wait_s: float | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.lock_ttl_s = lock_ttl_s
        self.message_ttl_s = message_ttl_s
        self.lock_wait_s = lock_wait_s if lock_wait_s is not None else max(30.0, 3 * lock_ttl_s)
        """How long a turn waits for another worker's turn of the same conversation."""
        self._redis = connect(url)
        self._commit = self._redis.register_script(_COMMIT)
        self._release = self._redis.register_script(_RELEASE)
        self._extend = self._redis.register_script(_EXTEND)
        self._what = f"conversation store {safe_url(url)}"
        self._local: dict[str, threading.Lock] = {}
        self._local_guard = threading.Lock()

    def _key(self, conversation_id: str, part: str) -> str:
        return f"{self.prefix}:{{{conversation_id}}}:{part}"

    def load(self, conversation_id: str) -> ConversationState:
        with redis_errors(self._what):
            raw = self._redis.hget(self._key(conversation_id, "state"), "state")
        if raw is None:
            return ConversationState(conversation_id=conversation_id)
        return ConversationState.from_json(json.loads(str(raw)))

    def commit(
        self,
        state: ConversationState,
        events: Sequence[Event],
        *,
        receipt: Receipt | None = None,
    ) -> ConversationState:
        """Store ``state`` (computed from the loaded version) and append ``events``."""
        new = replace(state, version=state.version + 1)
        cid = new.conversation_id
        kept = json.dumps({"digest": receipt.digest, "reply": receipt.reply}) if receipt else ""
        keys = [
            self._key(cid, "state"),
            self._key(cid, "events"),
            self._key(cid, f"message:{receipt.message_id if receipt else ''}"),
        ]
        args: list[str | int | float] = [
            state.version,
            json.dumps(new.to_json()),
            new.customer_id or "",
            time.time(),
            kept,
            self.message_ttl_s,
            *(json.dumps(event_to_dict(e)) for e in events),
        ]
        with redis_errors(self._what):
            status, current = self._commit(keys=keys, args=args)
        if status == 0:
            raise ConcurrentUpdate(
                f"conversation {cid!r} changed (version {current}, expected {state.version})"
            )
        if status == -1:
            assert receipt is not None
            raise ConcurrentUpdate(
                f"message {receipt.message_id!r} of conversation {cid!r} was answered already"
            )
        return new

    def events(self, conversation_id: str) -> list[Event]:
        with redis_errors(self._what):
            rows = self._redis.lrange(self._key(conversation_id, "events"), 0, -1)
        return [event_from_dict(json.loads(str(row))) for row in rows]

    def receipt(self, conversation_id: str, message_id: str) -> Receipt | None:
        with redis_errors(self._what):
            raw = self._redis.get(self._key(conversation_id, f"message:{message_id}"))
        if raw is None:
            return None
        data = json.loads(str(raw))
        return Receipt(message_id, data["digest"], data["reply"])

    def link_customer(self, customer_id: str, conversation_id: str, *, expires_at: float) -> None:
        key = f"{self.prefix}:customer:{customer_id}:link"
        value = json.dumps({"conversation_id": conversation_id, "expires_at": expires_at})
        with redis_errors(self._what):
            pipe = self._redis.pipeline()
            pipe.set(key, value)
            if expires_at > time.time():
                pipe.expireat(key, int(expires_at) + 1)
            pipe.execute()

    def linked_conversation(self, customer_id: str, *, now: float) -> str | None:
        with redis_errors(self._what):
            raw = self._redis.get(f"{self.prefix}:customer:{customer_id}:link")
        if raw is None:
            return None
        link = json.loads(str(raw))
        return str(link["conversation_id"]) if float(link["expires_at"]) > now else None

    def record_verification(self, customer_id: str, *, succeeded: bool, at: float) -> None:
        key = f"{self.prefix}:customer:{customer_id}:verification-failures"
        with redis_errors(self._what):
            if succeeded:
                self._redis.delete(key)
            else:
                self._redis.zadd(key, {f"{at!r}:{secrets.token_hex(4)}": at})

    def verification_failures(self, customer_id: str, *, since: float) -> int:
        key = f"{self.prefix}:customer:{customer_id}:verification-failures"
        with redis_errors(self._what):
            return int(self._redis.zcount(key, since, "+inf"))

    @contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        """The conversation to this turn alone, across every worker sharing the Redis.

        Raises :class:`ConversationBusy` after ``lock_wait_s`` without the lock.
        """
        with self._local_guard:
            local = self._local.setdefault(conversation_id, threading.Lock())
        with local:  # threads of this process queue here rather than polling Redis
            key = self._key(conversation_id, "lock")
            token = secrets.token_hex(16)
            ttl_ms = max(1, int(self.lock_ttl_s * 1000))
            self._acquire(key, token, ttl_ms)
            stop = threading.Event()
            renewer = threading.Thread(
                target=self._renew, args=(key, token, ttl_ms, stop), daemon=True
            )
            renewer.start()
            try:
                yield
            finally:
                stop.set()
                renewer.join()
                try:
                    with redis_errors(self._what):
                        self._release(keys=[key], args=[token])
                except BackendError as exc:  # it expires on its own
                    log.warning("lock of %s not released: %s", conversation_id, exc)

    def _acquire(self, key: str, token: str, ttl_ms: int) -> None:
        deadline = time.monotonic() + self.lock_wait_s
        delay = 0.002
        while True:
            with redis_errors(self._what):
                if self._redis.set(key, token, nx=True, px=ttl_ms):
                    return
            if time.monotonic() > deadline:
                raise ConversationBusy(
                    f"{self._what}: {key} stayed locked by another worker for "
                    f"{self.lock_wait_s:.0f} s"
                )
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)

    def _renew(self, key: str, token: str, ttl_ms: int, stop: threading.Event) -> None:
        while not stop.wait(ttl_ms / 3000):
            try:
                with redis_errors(self._what):
                    if not self._extend(keys=[key], args=[token, ttl_ms]):
                        log.warning("lock %s expired under a running turn", key)
                        return
            except BackendError as exc:
                log.warning("lock %s not renewed: %s", key, exc)

    def close(self) -> None:
        """Close the client's connections (they reopen on next use)."""
        self._redis.close()
