"""HTTPProfileStore against a real CRM-like JSON server on 127.0.0.1 (standard library)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.errors import BackendError, ConfigError
from cxbot.profiles import HTTPProfileStore, SQLiteProfileStore
from cxbot.testing import FixedClock

PREFIX = "/api/v1"
NOW = datetime(2026, 11, 25, 10, 0)

CUSTOMERS: list[dict[str, Any]] = [
    {
        "id": "K-1",
        "name": "Ada Lovelace",
        "segment": "premier",
        "email": "Ada@Example.com",
        "phone": "+447700900201",
        "card_status": "active",
        "consent": {"marketing": True},
    },
    {
        "id": "K-2",
        "name": "Grace Hopper",
        "segment": "student",
        "email": "grace@example.com",
        "card_status": "frozen",
        "consent": {"marketing": False},
    },
    {"id": "K/3", "name": "Alan Turing", "segment": "everyday", "phone": "+447700900203"},
]


class FakeCRM:
    """A JSON customer API: ``GET /api/v1/customers/{id}`` and ``GET /api/v1/contacts``,
    with per-path failures, delays and redirects; records every request."""

    def __init__(self) -> None:
        self.customers: dict[str, Any] = {c["id"]: c for c in CUSTOMERS}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status: dict[str, int] = {}
        self.raw: dict[str, bytes] = {}
        self.delay: dict[str, float] = {}
        self.redirect: dict[str, str] = {}
        self.contacts: list[str] | None = None
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.removeprefix(PREFIX)
                crm.requests.append((path, dict(self.headers.items())))
                # the client may have given up (timeout tests)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    crm.answer(self, path)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def answer(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        time.sleep(self.delay.get(path, 0))
        if path in self.redirect:
            handler.send_response(302)
            handler.send_header("Location", PREFIX + self.redirect[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if path in self.status:
            handler.send_error(self.status[path])
            return
        if path in self.raw:
            self._send(handler, self.raw[path])
            return
        if path == "/contacts" and self.contacts is not None:
            self._send(handler, json.dumps({"contacts": self.contacts}).encode())
            return
        head, _, customer_id = path.rpartition("/")
        customer = self.customers.get(unquote(customer_id))
        if head not in ("/customers", "/elsewhere") or customer is None:
            handler.send_error(404)
            return
        self._send(handler, json.dumps(customer).encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def __enter__(self) -> FakeCRM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Ticker:
    """A monotonic clock the test moves by hand (cache expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def crm() -> Iterator[FakeCRM]:
    with FakeCRM() as server:
        yield server


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


def test_get_reads_the_customer_record(crm: FakeCRM) -> None:
    store = HTTPProfileStore(crm.base_url)

    profile = store.get("K-1")

    assert profile is not None
    assert (profile.id, profile.name) == ("K-1", "Ada Lovelace")
    assert profile.fields["segment"] == "premier"
    assert profile.fields["card_status"] == "active"
    assert "name" not in profile.fields and "consent" not in profile.fields
    assert profile.consent == {"marketing": True}
    assert profile.contacts == {"ada@example.com", "+447700900201"}
    path, headers = crm.requests[-1]
    assert path == "/customers/K-1"
    assert headers["Accept"] == "application/json"
    assert "Authorization" not in headers


def test_unknown_customer_is_none_and_ids_are_quoted(crm: FakeCRM) -> None:
    store = HTTPProfileStore(crm.base_url)

    assert store.get("K-404") is None
    assert store.get("") is None
    odd = store.get("K/3")
    assert odd is not None and odd.name == "Alan Turing"
    assert crm.paths() == ["/customers/K-404", "/customers/K%2F3"]
    assert store.get("../contacts") is None
    assert crm.paths()[-1] == "/customers/..%2Fcontacts"


def test_bearer_token_comes_from_the_named_environment_variable(crm: FakeCRM) -> None:
    env = {"CRM_TOKEN": "s3cret"}
    store = HTTPProfileStore(crm.base_url, token_env="CRM_TOKEN", env=env)

    assert store.get("K-2") is not None
    assert crm.requests[-1][1]["Authorization"] == "Bearer s3cret"

    env["CRM_TOKEN"] = "rotated"  # read on every request
    store.clear_cache()
    store.get("K-2")
    assert crm.requests[-1][1]["Authorization"] == "Bearer rotated"

    missing = HTTPProfileStore(crm.base_url, token_env="CRM_TOKEN", env={})
    with pytest.raises(ConfigError, match="CRM_TOKEN"):
        missing.get("K-2")


def test_the_token_does_not_follow_a_redirect(crm: FakeCRM) -> None:
    crm.redirect["/customers/K-1"] = "/elsewhere/K-1"
    store = HTTPProfileStore(crm.base_url, token_env="CRM_TOKEN", env={"CRM_TOKEN": "s3cret"})

    profile = store.get("K-1")

    assert profile is not None and profile.name == "Ada Lovelace"
    (first, first_headers), (second, second_headers) = crm.requests
    assert (first, second) == ("/customers/K-1", "/elsewhere/K-1")
    assert first_headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in second_headers


@pytest.mark.parametrize(
    ("path_status", "raw", "match"),
    [
        (500, None, "answered 500"),
        (401, None, "answered 401"),
        (503, None, "answered 503"),
        (None, b"<html>oops</html>", "not JSON"),
        (None, b'["K-1"]', "expected a JSON object"),
        (None, b'{"id": "K-2", "name": "Grace Hopper"}', "returned customer 'K-2'"),
        (None, b'{"id": "K-1", "consent": ["marketing"]}', "consent"),
    ],
)
def test_service_failures_are_backend_errors(
    crm: FakeCRM, path_status: int | None, raw: bytes | None, match: str
) -> None:
    if path_status is not None:
        crm.status["/customers/K-1"] = path_status
    if raw is not None:
        crm.raw["/customers/K-1"] = raw
    store = HTTPProfileStore(crm.base_url)

    with pytest.raises(BackendError, match=match):
        store.get("K-1")


def test_a_slow_service_times_out_as_a_backend_error(crm: FakeCRM) -> None:
    crm.delay["/customers/K-1"] = 2.0
    store = HTTPProfileStore(crm.base_url, timeout_s=0.3)

    started = time.monotonic()
    with pytest.raises(BackendError, match="unreachable"):
        store.get("K-1")
    assert time.monotonic() - started < 1.5


def test_an_unreachable_service_is_a_backend_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = HTTPProfileStore(f"http://127.0.0.1:{port}", timeout_s=1)

    with pytest.raises(BackendError, match="unreachable"):
        store.get("K-1")


def test_a_base_url_that_is_not_http_is_a_config_error() -> None:
    for url in ("crm.example.com/api", "ftp://crm.example.com", "http://"):
        with pytest.raises(ConfigError):
            HTTPProfileStore(url)


def test_found_profiles_are_cached_until_the_ttl(crm: FakeCRM, ticker: Ticker) -> None:
    store = HTTPProfileStore(crm.base_url, ttl_s=30, clock=ticker)

    first = store.get("K-1")
    crm.customers["K-1"] = {**crm.customers["K-1"], "card_status": "frozen"}
    ticker.now += 29
    assert store.get("K-1") == first
    assert crm.paths() == ["/customers/K-1"]

    ticker.now += 1
    refreshed = store.get("K-1")
    assert refreshed is not None and refreshed.fields["card_status"] == "frozen"
    assert crm.paths() == ["/customers/K-1"] * 2


def test_the_cache_evicts_the_least_recently_used(crm: FakeCRM, ticker: Ticker) -> None:
    store = HTTPProfileStore(crm.base_url, cache_size=2, clock=ticker)

    for customer_id in ("K-1", "K-2", "K-1", "K/3"):  # K-2 is now the least recently used
        store.get(customer_id)
    assert crm.paths() == ["/customers/K-1", "/customers/K-2", "/customers/K%2F3"]
    store.get("K-1")
    assert len(crm.requests) == 3
    store.get("K-2")
    assert crm.paths()[-1] == "/customers/K-2"


def test_misses_are_not_cached(crm: FakeCRM) -> None:
    store = HTTPProfileStore(crm.base_url)
    assert store.get("K-9") is None

    crm.customers["K-9"] = {"id": "K-9", "name": "New Customer"}
    found = store.get("K-9")
    assert found is not None and found.name == "New Customer"


def test_no_cache_asks_every_time(crm: FakeCRM) -> None:
    store = HTTPProfileStore(crm.base_url, cache_size=0)
    store.get("K-1")
    store.get("K-1")
    assert crm.paths() == ["/customers/K-1"] * 2


def test_field_map_renames_flat_and_nested_keys(crm: FakeCRM) -> None:
    crm.customers["X-7"] = {
        "customerId": "X-7",
        "fullName": "Hedy Lamarr",
        "tier": "premier",
        "contact": {"email": "hedy@example.com", "mobile": "+447700900207"},
        "permissions": {"marketing": True, "profiling": "yes"},
        "branch": "Old Town",
    }
    store = HTTPProfileStore(
        crm.base_url,
        field_map={
            "customerId": "id",
            "fullName": "name",
            "tier": "segment",
            "contact.email": "email",
            "contact.mobile": "phone",
            "permissions": "consent",
        },
    )

    profile = store.get("X-7")

    assert profile is not None
    assert (profile.id, profile.name) == ("X-7", "Hedy Lamarr")
    assert profile.fields["segment"] == "premier"
    assert profile.fields["branch"] == "Old Town"  # unmapped keys are kept
    assert "tier" not in profile.fields and "fullName" not in profile.fields
    assert profile.contacts == {"hedy@example.com", "+447700900207"}
    # only a JSON true is consent
    assert profile.consent == {"marketing": True, "profiling": False}


def test_contacts_are_those_of_customers_fetched_so_far(crm: FakeCRM) -> None:
    store = HTTPProfileStore(crm.base_url, cache_size=1)
    assert store.all_contacts() == frozenset()

    store.get("K-1")
    store.get("K-2")  # evicts K-1 from the cache; its contacts stay known
    assert store.all_contacts() == {"ada@example.com", "+447700900201", "grace@example.com"}
    assert crm.paths() == ["/customers/K-1", "/customers/K-2"]


def test_contacts_endpoint_is_listed_and_cached(crm: FakeCRM, ticker: Ticker) -> None:
    crm.contacts = ["ANN@example.com", "+447700900999"]
    store = HTTPProfileStore(crm.base_url, contacts_path="/contacts", ttl_s=60, clock=ticker)

    assert store.all_contacts() == {"ann@example.com", "+447700900999"}
    store.get("K-2")
    assert store.all_contacts() == {"ann@example.com", "+447700900999", "grace@example.com"}
    assert crm.paths().count("/contacts") == 1

    crm.contacts = ["bob@example.com"]
    ticker.now += 61
    assert store.all_contacts() == {"bob@example.com", "grace@example.com"}
    assert crm.paths().count("/contacts") == 2

    crm.status["/contacts"] = 500
    ticker.now += 61
    with pytest.raises(BackendError):
        store.all_contacts()


# -- the same answers as the SQLite store ------------------------------------------------
def test_http_and_sqlite_stores_agree(crm: FakeCRM, tmp_path: Path) -> None:
    fixture = tmp_path / "customers.json"
    fixture.write_text(json.dumps({"customers": CUSTOMERS}), encoding="utf-8")
    sqlite = SQLiteProfileStore(tmp_path / "profiles.sqlite", fixture)
    http = HTTPProfileStore(crm.base_url)
    try:
        for customer in CUSTOMERS:
            assert http.get(customer["id"]) == sqlite.get(customer["id"])
        assert http.get("nobody") is None and sqlite.get("nobody") is None
        assert http.all_contacts() == sqlite.all_contacts()
    finally:
        sqlite.close()


# -- in a turn -----------------------------------------------------------------------------
def test_an_answer_cites_profile_facts_read_over_http(
    crm: FakeCRM,
    tmp_path: Path,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
) -> None:
    northwind = json.loads(
        (ingested_project / "knowledge/northwind/customers.json").read_text(encoding="utf-8")
    )
    crm.customers = {c["id"]: c for c in northwind["customers"]}
    # the CRM knows better than the fixture: the card has since been cancelled
    crm.customers["C-1001"] = {**crm.customers["C-1001"], "card_status": "cancelled"}
    root = tmp_path / "project"
    shutil.copytree(ingested_project, root)
    bot = Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env={})
    try:
        bot.warm_up()
        # Assistant.from_dir has no profile-store parameter: swap the store into the deps
        store = HTTPProfileStore(crm.base_url)
        bot.pipeline = bot.pipeline.with_deps(replace(bot.deps, profiles=store))
        bot.deps = bot.pipeline.deps

        reply = bot.respond("http-card", "Is my card frozen?", customer_id="C-1001")

        facts = {c.source: c.snippet for c in reply.citations if c.source.startswith("profile:")}
        assert facts == {"profile: card_status": "cancelled"}
        assert "card status: cancelled" in reply.text
        assert "/customers/C-1001" in crm.paths()
    finally:
        bot.close()
