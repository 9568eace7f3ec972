"""Customer profiles: the ``ProfileStore`` protocol, the SQLite default, an HTTP CRM adapter,
and the rule of what each use may see (allowlist per use, consent)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxbot.profiles.store import Profile, ProfileStore, SQLiteProfileStore, visible_facts

if TYPE_CHECKING:
    from cxbot.profiles.http import HTTPProfileStore

__all__ = ["HTTPProfileStore", "Profile", "ProfileStore", "SQLiteProfileStore", "visible_facts"]


def __getattr__(name: str) -> Any:
    # urllib.request (and ssl) load only when the HTTP adapter is used
    if name == "HTTPProfileStore":
        from cxbot.profiles.http import HTTPProfileStore

        return HTTPProfileStore
    raise AttributeError(f"module 'cxbot.profiles' has no attribute {name!r}")
