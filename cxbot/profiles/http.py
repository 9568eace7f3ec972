"""A profile store over a CRM's JSON REST API: an example adapter for the ``ProfileStore``
protocol, written with the standard library (``urllib``) only.

``get(id)`` sends ``GET {base_url}/customers/{id}`` (the id URL-quoted) and reads one JSON
object shaped like a fixture customer::

    {"id": "C-1001", "name": "Eleanor Whitcombe", "segment": "premier",
     "card_status": "frozen", "email": "…", "consent": {"marketing": false}}

- ``404`` → ``None`` (the pipeline then raises :class:`~cxbot.errors.UnknownCustomer`).
- Any other HTTP status, a timeout, an unreachable host, a body that is not a JSON object,
  or a record for another id → :class:`~cxbot.errors.BackendError`.
- ``field_map`` renames the CRM's keys to cxbot's: ``{"fullName": "name", "tier":
  "segment", "contact.email": "email"}``; a dotted key reads a nested object. Unmapped
  keys are kept as they are. Only allowlisted fields ever leave the store
  (:func:`~cxbot.profiles.store.visible_facts`), whatever the CRM returns.
- ``token_env`` names the environment variable holding a bearer token; it is read on
  every request (so a rotated token is picked up) and never follows a redirect.
- Found profiles are kept in a small in-process LRU cache for ``ttl_s`` seconds
  (``cache_size`` entries; 0 turns it off). Misses are not cached: a new customer is
  visible at once.

``all_contacts()`` feeds the ``pii_leak`` output guardrail, which blocks a reply quoting
another customer's email or phone. A CRM cannot cheaply list every customer, so:

- with ``contacts_path`` (e.g. ``"/contacts"``), ``GET {base_url}{contacts_path}`` must
  return ``{"contacts": ["ann@example.com", "+447700900101", …]}`` (or the bare list);
  it is fetched at most once per ``ttl_s``;
- without it, the set holds only the contacts of customers this process has fetched.
  That is the limitation: the guard then cannot recognise contacts of customers the
  process has never looked up.

Usage::

    from cxbot.profiles.http import HTTPProfileStore
    from cxbot.profiles.store import visible_facts

    crm = HTTPProfileStore(
        "https://crm.example.com/api/v2",
        token_env="CRM_API_TOKEN",
        field_map={"fullName": "name", "tier": "segment", "contact.email": "email"},
        contacts_path="/contacts",
    )
    profile = crm.get("C-1001")            # Profile | None; BackendError if the CRM fails
    if profile is not None:
        facts = visible_facts(profile, config.profiles.fields_for("rag"),
                              config.profiles.consent_gated)
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from cxbot.errors import BackendError, ConfigError
from cxbot.profiles.store import Profile

__all__ = ["HTTPProfileStore"]

MAX_BODY_BYTES = 1_000_000
"""A larger answer is not a customer record; it is refused rather than read."""


class HTTPProfileStore:
    """Looks customers up in a CRM over HTTP; implements ``ProfileStore``."""

    def __init__(
        self,
        base_url: str,
        *,
        token_env: str | None = None,
        timeout_s: float = 5,
        field_map: Mapping[str, str] | None = None,
        contacts_path: str | None = None,
        cache_size: int = 256,
        ttl_s: float = 60.0,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"profile service URL {base_url!r} is not an http(s) URL",
                fix="use the API root, e.g. https://crm.example.com/api",
            )
        if timeout_s <= 0 or ttl_s < 0 or cache_size < 0:
            raise ValueError("timeout_s must be positive; ttl_s and cache_size not negative")
        self.base_url = base_url.rstrip("/")
        self.token_env = token_env
        self.timeout_s = timeout_s
        self.field_map = dict(field_map or {})
        self.contacts_path = contacts_path
        self.cache_size = cache_size
        self.ttl_s = ttl_s
        self._env = os.environ if env is None else env
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, Profile]] = OrderedDict()
        self._seen_contacts: set[str] = set()
        self._listed_contacts: tuple[float, frozenset[str]] | None = None

    # -- ProfileStore --------------------------------------------------------------------
    def get(self, customer_id: str) -> Profile | None:
        """The customer ``customer_id``, from the cache or the CRM; ``None`` if unknown."""
        if not customer_id:
            return None
        cached = self._cached(customer_id)
        if cached is not None:
            return cached
        data = self._get_json(f"/customers/{urllib.parse.quote(customer_id, safe='')}")
        if data is None:
            return None
        profile = self._profile(customer_id, data)
        with self._lock:
            self._seen_contacts.update(profile.contacts)
            if self.cache_size:
                self._cache[customer_id] = (self._clock() + self.ttl_s, profile)
                self._cache.move_to_end(customer_id)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return profile

    def all_contacts(self) -> frozenset[str]:
        """Emails and phones (lower-cased) of known customers; see the module docstring
        for what "known" means with and without ``contacts_path``."""
        if self.contacts_path is None:
            with self._lock:
                return frozenset(self._seen_contacts)
        with self._lock:
            listed = self._listed_contacts
        if listed is None or listed[0] <= self._clock():
            data = self._get_json(self.contacts_path)
            raw = data.get("contacts") if isinstance(data, dict) else data
            if not isinstance(raw, list):
                raise BackendError(
                    f"{self.base_url}{self.contacts_path}: expected a list of contacts "
                    '(or {"contacts": [...]})'
                )
            listed = (self._clock() + self.ttl_s, frozenset(str(c).lower() for c in raw if c))
            with self._lock:
                self._listed_contacts = listed
        with self._lock:
            return listed[1] | self._seen_contacts

    def clear_cache(self) -> None:
        """Forget cached profiles and the listed contacts."""
        with self._lock:
            self._cache.clear()
            self._listed_contacts = None

    # -- helpers -------------------------------------------------------------------------
    def _cached(self, customer_id: str) -> Profile | None:
        with self._lock:
            entry = self._cache.get(customer_id)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._cache[customer_id]
                return None
            self._cache.move_to_end(customer_id)
            return entry[1]

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "cxbot-profiles"}
        if self.token_env is not None:
            token = self._env.get(self.token_env)
            if not token:
                raise ConfigError(
                    f"environment variable {self.token_env} (the profile service token) is not set",
                    fix=f"export {self.token_env}=<token>",
                )
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _get_json(self, path: str) -> Any:
        """The decoded JSON body of ``GET base_url + path``; ``None`` on 404."""
        url = self.base_url + path
        request = urllib.request.Request(url, method="GET")
        for name, value in self._headers().items():
            # unredirected: the token is never sent on to wherever a redirect points
            request.add_unredirected_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None
            raise BackendError(
                f"profile service answered {exc.code} {exc.reason} for {url}"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # timeouts are OSErrors; a connection cut mid-answer is an HTTPException
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else repr(exc)
            raise BackendError(f"profile service unreachable at {url}: {reason}") from exc
        if len(body) > MAX_BODY_BYTES:
            raise BackendError(f"profile service answer from {url} is over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BackendError(f"profile service answer from {url} is not JSON: {exc}") from None

    def _profile(self, customer_id: str, data: Any) -> Profile:
        where = f"{self.base_url}/customers/{customer_id}"
        if not isinstance(data, dict):
            raise BackendError(f"{where}: expected a JSON object, got {type(data).__name__}")
        record = _renamed(data, self.field_map)
        found = str(record.pop("id", customer_id))
        if found != customer_id:
            raise BackendError(f"{where}: the service returned customer {found!r} instead")
        consent = record.pop("consent", None) or {}
        if not isinstance(consent, dict):
            raise BackendError(f"{where}: 'consent' must be an object of flags")
        name = record.pop("name", None)
        return Profile(
            id=customer_id,
            name="" if name is None else str(name),
            fields=record,
            consent={str(k): v is True for k, v in consent.items()},
        )


def _renamed(data: dict[str, Any], field_map: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with the keys (dotted paths for nested ones) of ``field_map`` renamed."""
    moved = {source for source in field_map if "." not in source}
    record = {k: v for k, v in data.items() if k not in moved}
    for source, target in field_map.items():
        node: Any = data
        for part in source.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            record[target] = node
    return record
