"""Contract tests every store implementation must pass (Haystack-style).

Subclass a contract in your test suite and provide the store under test as a fixture::

    class TestMyStore(ConversationStoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(...)

The SQLite stores pass them in cxbot's own tests; a Redis or HTTP store must pass the same.
"""

from __future__ import annotations

import threading

import pytest

from cxbot.conversation.events import BotUttered, Event, FlowStarted, SlotSet, UserUttered
from cxbot.conversation.reducer import apply_all
from cxbot.conversation.state import ConversationState
from cxbot.conversation.store import ConcurrentUpdate, ConversationStore, Receipt

__all__ = ["ConversationStoreContract"]


class ConversationStoreContract:
    """Behaviour every :class:`~cxbot.conversation.store.ConversationStore` must have."""

    @pytest.fixture
    def store(self) -> ConversationStore:  # pragma: no cover - provided by subclasses
        raise NotImplementedError("provide a `store` fixture")

    def test_unknown_conversation_is_a_fresh_state(self, store: ConversationStore) -> None:
        state = store.load("nobody")
        assert state == ConversationState(conversation_id="nobody")
        assert store.events("nobody") == []

    def test_commit_keeps_state_and_events_in_order(self, store: ConversationStore) -> None:
        events: list[Event] = [
            UserUttered("book please", "book_appointment", 0.7),
            FlowStarted("book_appointment"),
            SlotSet("branch", "Riverside"),
            BotUttered("Which day?", "flow"),
        ]
        state = apply_all(store.load("c1"), events)
        saved = store.commit(state, events)
        assert saved.version == 1
        loaded = store.load("c1")
        assert loaded == saved
        assert loaded.flow is not None and loaded.flow.slots == {"branch": "Riverside"}
        assert store.events("c1") == events
        more: list[Event] = [UserUttered("Friday"), BotUttered("What time?", "flow")]
        store.commit(apply_all(loaded, more), more)
        assert store.events("c1") == [*events, *more]
        assert store.load("c1").version == 2

    def test_a_stale_writer_loses(self, store: ConversationStore) -> None:
        first = store.load("c2")
        store.commit(first, [UserUttered("hi")])
        with pytest.raises(ConcurrentUpdate):
            store.commit(first, [UserUttered("hello again")])
        assert store.events("c2") == [UserUttered("hi")]

    def test_concurrent_writers_never_both_win(self, store: ConversationStore) -> None:
        start = store.load("c3")
        wins: list[int] = []
        losses: list[int] = []

        def write(n: int) -> None:
            try:
                store.commit(start, [UserUttered(f"message {n}")])
                wins.append(n)
            except ConcurrentUpdate:
                losses.append(n)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1 and len(losses) == 7
        assert store.events("c3") == [UserUttered(f"message {wins[0]}")]

    def test_a_customer_links_to_their_latest_conversation(self, store: ConversationStore) -> None:
        assert store.linked_conversation("C-1", now=1000.0) is None
        store.link_customer("C-1", "web-1", expires_at=2000.0)
        store.link_customer("C-2", "sms-9", expires_at=2000.0)
        assert store.linked_conversation("C-1", now=1000.0) == "web-1"
        store.link_customer("C-1", "sms-1", expires_at=3000.0)
        assert store.linked_conversation("C-1", now=2500.0) == "sms-1"
        assert store.linked_conversation("C-1", now=3000.0) is None  # expired
        assert store.linked_conversation("C-2", now=1000.0) == "sms-9"

    def test_failed_verifications_count_per_customer_until_one_succeeds(
        self, store: ConversationStore
    ) -> None:
        assert store.verification_failures("C-1", since=0.0) == 0
        for at in (100.0, 200.0, 300.0):
            store.record_verification("C-1", succeeded=False, at=at)
        store.record_verification("C-2", succeeded=False, at=150.0)
        assert store.verification_failures("C-1", since=0.0) == 3
        assert store.verification_failures("C-1", since=200.0) == 2
        store.record_verification("C-1", succeeded=True, at=400.0)
        assert store.verification_failures("C-1", since=0.0) == 0
        assert store.verification_failures("C-2", since=0.0) == 1

    def test_conversations_do_not_cross(self, store: ConversationStore) -> None:
        for name in ("a", "b"):
            state = store.load(name)
            store.commit(apply_all(state, [UserUttered(name)]), [UserUttered(name)])
        assert store.events("a") == [UserUttered("a")]
        assert store.events("b") == [UserUttered("b")]
        assert store.load("a").history == (("user", "a"),)

    def test_a_receipt_is_committed_with_its_turn(self, store: ConversationStore) -> None:
        assert store.receipt("c4", "m-1") is None
        receipt = Receipt("m-1", "digest-1", '{"text": "Hello"}')
        store.commit(store.load("c4"), [UserUttered("hi")], receipt=receipt)
        assert store.receipt("c4", "m-1") == receipt
        assert store.receipt("c4", "m-2") is None
        assert store.receipt("other", "m-1") is None

    def test_a_message_id_is_answered_once(self, store: ConversationStore) -> None:
        receipt = Receipt("m-1", "digest-1", "{}")
        store.commit(store.load("c5"), [UserUttered("hi")], receipt=receipt)
        with pytest.raises(ConcurrentUpdate):
            store.commit(store.load("c5"), [UserUttered("hi")], receipt=receipt)
        assert store.events("c5") == [UserUttered("hi")]
        assert store.load("c5").version == 1

    def test_a_stale_writer_keeps_no_receipt(self, store: ConversationStore) -> None:
        first = store.load("c6")
        store.commit(first, [UserUttered("hi")])
        with pytest.raises(ConcurrentUpdate):
            store.commit(first, [UserUttered("again")], receipt=Receipt("m-9", "d", "{}"))
        assert store.receipt("c6", "m-9") is None

    def test_the_lock_serialises_turns(self, store: ConversationStore) -> None:
        failures: list[Exception] = []

        def turns(n: int) -> None:
            for i in range(5):
                try:
                    with store.lock("c7"):
                        state = store.load("c7")
                        store.commit(state, [UserUttered(f"{n}-{i}")])
                except ConcurrentUpdate as exc:
                    failures.append(exc)

        threads = [threading.Thread(target=turns, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert store.load("c7").version == 20
        assert len(store.events("c7")) == 20
