"""Customer profiles: the ``ProfileStore`` protocol, the SQLite default, allowlist and consent."""

from cxbot.profiles.store import Profile, ProfileStore, SQLiteProfileStore, visible_facts

__all__ = ["Profile", "ProfileStore", "SQLiteProfileStore", "visible_facts"]
