"""The SQLite conversation store passes the shipped contract, and survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxbot.conversation.events import UserUttered
from cxbot.conversation.store import SQLiteConversationStore
from cxbot.testing.contracts import ConversationStoreContract


class TestSQLiteConversationStore(ConversationStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> SQLiteConversationStore:
        return SQLiteConversationStore(tmp_path / "conversations.sqlite")


def test_state_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite"
    first = SQLiteConversationStore(path)
    first.commit(first.load("c"), [UserUttered("hello")])
    first.close()
    again = SQLiteConversationStore(path)
    assert again.load("c").version == 1
    assert again.events("c") == [UserUttered("hello")]
