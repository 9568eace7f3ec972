"""Profile stores and the rule of what an answer may see.

Only allowlisted fields leave the store, and a field gated by a consent flag is dropped
when the customer has not given that consent.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cxbot._sqlite import ThreadLocalSQLite
from cxbot.errors import ConfigError

__all__ = ["Profile", "ProfileStore", "SQLiteProfileStore", "visible_facts"]


@dataclass(frozen=True, slots=True)
class Profile:
    """One customer as the profile store keeps them."""

    id: str
    name: str
    fields: Mapping[str, Any]
    consent: Mapping[str, bool] = field(default_factory=dict)

    @property
    def contacts(self) -> frozenset[str]:
        """The customer's own email and phone, lower-cased (they may see these)."""
        return frozenset(
            str(self.fields[k]).lower() for k in ("email", "phone") if self.fields.get(k)
        )


class ProfileStore(Protocol):
    """Looks customers up by id."""

    def get(self, customer_id: str) -> Profile | None: ...

    def all_contacts(self) -> frozenset[str]: ...


def _describe(key: str, value: Any) -> str:
    if key == "accounts" and isinstance(value, list):
        return "; ".join(
            f"{a.get('name', a.get('type'))} ending {a.get('last4')}: "
            f"{a.get('balance')} {a.get('currency', '')}".strip()
            for a in value
        )
    return str(value).replace("_", " ")


def visible_facts(
    profile: Profile, allowlist: Collection[str], consent_gated: Mapping[str, str]
) -> dict[str, str]:
    """The profile fields an answer may use, rendered as short strings."""
    facts: dict[str, str] = {}
    for key in allowlist:
        if key == "name":
            facts["name"] = profile.name
            continue
        if key not in profile.fields:
            continue
        flag = consent_gated.get(key)
        if flag is not None and not profile.consent.get(flag, False):
            continue
        facts[key] = _describe(key, profile.fields[key])
    return facts


class SQLiteProfileStore:
    """Profiles in SQLite, (re)loaded from a JSON fixture ``{"customers": [...]}``."""

    def __init__(self, path: str | Path, fixture: str | Path | None = None) -> None:
        self.path = Path(path)
        self._conn = ThreadLocalSQLite(self.path)
        self._contacts: frozenset[str] | None = None
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS profiles (id TEXT PRIMARY KEY, data TEXT NOT NULL)"
        )
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        if fixture is not None:
            self._load_fixture(Path(fixture))

    def _load_fixture(self, fixture: Path) -> None:
        try:
            raw = fixture.read_text(encoding="utf-8")
            customers = json.loads(raw)["customers"]
            rows = [(c["id"], json.dumps(c)) for c in customers]
        except FileNotFoundError:
            raise ConfigError("profile fixture not found", file=fixture) from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"profile fixture is malformed: {exc!r}",
                file=fixture,
                fix='expected {"customers": [{"id": ..., "name": ..., ...}]}',
            ) from None
        conn = self._conn()
        if conn.execute("SELECT value FROM meta WHERE key = 'fixture'").fetchone() == (raw,):
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM profiles")
        conn.executemany("INSERT INTO profiles VALUES (?, ?)", rows)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('fixture', ?)", (raw,))
        conn.execute("COMMIT")

    def get(self, customer_id: str) -> Profile | None:
        row = (
            self._conn()
            .execute("SELECT data FROM profiles WHERE id = ?", (customer_id,))
            .fetchone()
        )
        if row is None:
            return None
        data = json.loads(row[0])
        consent = data.pop("consent", {})
        return Profile(id=data.pop("id"), name=data.pop("name", ""), fields=data, consent=consent)

    def all_contacts(self) -> frozenset[str]:
        if self._contacts is None:
            contacts: set[str] = set()
            for (raw,) in self._conn().execute("SELECT data FROM profiles"):
                data = json.loads(raw)
                contacts.update(str(data[k]).lower() for k in ("email", "phone") if data.get(k))
            self._contacts = frozenset(contacts)
        return self._contacts

    def close(self) -> None:
        self._conn.close()
