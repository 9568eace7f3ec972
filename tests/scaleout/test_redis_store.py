"""The Redis conversation store on a real redis-server: the shipped store contract, locks
across processes, a lock a killed holder leaves behind, and failures as BackendError."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import pytest

from cxbot.conversation.events import UserUttered
from cxbot.conversation.redis_store import ConversationBusy, RedisConversationStore
from cxbot.errors import BackendError
from cxbot.testing.contracts import ConversationStoreContract
from cxbot.testing.servers import free_port

pytestmark = pytest.mark.integration  # spawns redis-server


class TestRedisConversationStore(ConversationStoreContract):
    @pytest.fixture
    def store(self, redis_url: str, prefix: str) -> Iterator[RedisConversationStore]:
        store = RedisConversationStore(redis_url, prefix=prefix)
        yield store
        store.close()


def _turns(url: str, prefix: str, worker: int, count: int) -> None:
    store = RedisConversationStore(url, prefix=prefix)
    for i in range(count):
        with store.lock("shared"):
            state = store.load("shared")
            time.sleep(0.002)  # a turn's work between load and commit
            store.commit(state, [UserUttered(f"{worker}-{i}")])
    store.close()


def test_processes_take_turns_on_one_conversation(redis_url: str, prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_turns, args=(redis_url, prefix, n, 10)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]  # no ConcurrentUpdate in any of them
    store = RedisConversationStore(redis_url, prefix=prefix)
    assert store.load("shared").version == 30
    sent = {e.text for e in store.events("shared") if isinstance(e, UserUttered)}
    assert sent == {f"{n}-{i}" for n in range(3) for i in range(10)}


def test_a_lock_left_by_a_dead_holder_expires(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}:{{c}}:lock", "killed-worker", px=800)  # its holder will never release
    store = RedisConversationStore(redis_url, prefix=prefix, lock_ttl_s=5)
    started = time.monotonic()
    with store.lock("c"):
        waited = time.monotonic() - started
    assert 0.5 < waited < 3


def test_a_lock_held_too_long_is_busy(redis_url: str, prefix: str) -> None:
    holder = RedisConversationStore(redis_url, prefix=prefix, lock_ttl_s=0.3)
    waiter = RedisConversationStore(redis_url, prefix=prefix, lock_ttl_s=0.3, lock_wait_s=0.5)
    with holder.lock("c"):  # renewed while held, however long past the TTL
        time.sleep(0.8)
        with pytest.raises(ConversationBusy), waiter.lock("c"):
            pass
    with waiter.lock("c"):
        pass


def test_an_unreachable_redis_is_a_backend_error(prefix: str) -> None:
    store = RedisConversationStore(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix)
    with pytest.raises(BackendError, match=r"conversation store redis://127\.0\.0\.1"):
        store.load("c")
