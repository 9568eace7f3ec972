"""``cxbot bench load``: several workers behind the HTTP API on shared stores, and simulated
customers booking appointments and asking questions at the same time.

What one run does, on loopback only and on a temporary copy of the project:

1. ``shared``: starts ``redis-server`` and a Chroma server (``chroma run``) on free ports,
   then ``workers`` processes of ``cxbot serve`` with ``storage.redis_url`` and
   ``storage.chroma_url`` set (conversations, locks, message ids and the calendar in
   Redis; the knowledge vectors on the Chroma server). The first worker ingests the
   knowledge through ``POST /v1/admin/ingest`` before the others start.
2. ``customers`` simulated customers, each in a conversation of their own, send ``turns``
   messages each, concurrently: bookings (all of them into a few branches, days and hours,
   so customers compete for the same advisor slots; a conflict is answered with the first
   alternative offered, a confirmation with "yes please") mixed with knowledge questions.
   The client spreads requests round-robin over the workers' ports, request by request,
   so consecutive messages of one conversation reach different workers (no load balancer
   is needed for that, and none is involved). Every message carries a message id; a
   failed request is retried with the same id on the next worker.
3. The stores are then read directly and checked:

   - ``lost_turns``: messages without a reply, or whose turn is missing from the stored
     conversation;
   - ``crossed_conversations``: conversations whose stored messages or replies differ from
     what their customer sent and received, or whose confirmed booking belongs to another
     customer or branch;
   - ``double_bookings``: booked appointments sharing an advisor and a start.

4. ``baseline``: the same customers against one worker with the embedded defaults (SQLite,
   embedded Chroma), in the same run.

Bounded: every request times out after ``request_timeout_s`` and the whole run stops
sending after ``timeout_s``; every process started is stopped at the end, however it ends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cxbot.errors import BackendError

if TYPE_CHECKING:
    import httpx

__all__ = ["LoadMetrics", "Worker", "format_load_report", "run_load", "start_worker"]

CUSTOMER_KEY_ENV: Final = "CXBOT_LOAD_CUSTOMER_KEY"
ADMIN_KEY_ENV: Final = "CXBOT_LOAD_ADMIN_KEY"
QUESTIONS: Final = (
    "How do I dispute a card payment?",
    "What are the fees for using my card abroad?",
    "How long does an international transfer take?",
    "How do I change my PIN?",
    "What is the daily contactless limit?",
    "How can I report a phishing email?",
    "How do I set up a standing order?",
    "How long does a replacement card take to arrive?",
    "Where can I find my statements?",
    "What documents do I need to open an account?",
)
DAYS: Final = ("next Tuesday", "next Wednesday", "next Thursday")
HOURS: Final = ("10am", "11am", "2pm")
BOOK_EVERY: Final = 4
"""A customer starts a booking every this many turns (questions in between)."""
_OPTION = re.compile(r"\b[A-Z][a-z]+day \d{1,2} [A-Z][a-z]+ at \d{2}:\d{2}")
_REFERENCE = re.compile(r"\bAPT-\d{5}\b")


# -- figures ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoadMetrics:
    """One load run: its checks first, then its speed."""

    lost_turns: int
    crossed_conversations: int
    double_bookings: int
    turns: int
    """Turns answered."""
    turns_per_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    seconds: float
    bookings: int
    """Appointments confirmed to customers."""
    conflicts: int
    """Replies offering alternatives because the slot was taken."""
    retries: int
    """Requests sent again (same message id) after a failure."""
    errors: tuple[str, ...] = ()
    """The first failures seen, if any."""


# -- processes --------------------------------------------------------------------------
@dataclass
class Worker:
    """One ``cxbot serve`` process on ``port``."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-whatever, as after an out-of-memory kill."""
        self.process.kill()
        self.process.wait()


def start_worker(root: Path, env: Mapping[str, str], log: Path) -> Worker:
    """Start ``cxbot serve`` for ``root`` on a free loopback port (not waiting for it)."""
    from cxbot.testing.servers import free_port

    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cxbot.cli",
                "serve",
                "--dir",
                str(root),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_child_env(), **env},
        )
    return Worker(port, process, log)


def wait_ready(worker: Worker, timeout_s: float = 180.0) -> None:
    """Until ``/readyz`` answers 200 (the model is warm and the stores answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if worker.process.poll() is not None:
            raise BackendError(f"worker on port {worker.port} exited: {_tail(worker.log)}")
        try:
            with urllib.request.urlopen(worker.url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BackendError(f"worker on port {worker.port} not ready: {_tail(worker.log)}")
        time.sleep(0.2)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("ANONYMIZED_TELEMETRY", "False"),
    ):
        env.setdefault(key, value)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_parent, env.get("PYTHONPATH"))))
    return env


# -- the project copy -------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """Workers serving one project copy, and what a client needs to talk to them."""

    root: Path
    workers: list[Worker]
    customer_key: str
    redis_url: str | None
    fixture: Path
    customers: tuple[str, ...]
    booking_pairs: tuple[tuple[str, str], ...]
    """(branch, topic) pairs some advisor covers."""


def prepare_project(root: Path, customers: int) -> tuple[Path, list[str]]:
    """Give the copy API keys and ``customers`` synthetic customers. Returns the calendar
    fixture and the customer ids."""
    from ruamel.yaml import YAML

    from cxbot.config import load_config

    config = load_config(root, env={})
    yaml = YAML()
    path = root / "cxbot.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    data.setdefault("server", {})["keys"] = [
        {"key_env": CUSTOMER_KEY_ENV, "role": "customer"},
        {"key_env": ADMIN_KEY_ENV, "role": "admin"},
    ]
    existing: list[dict[str, Any]] = []
    if config.profiles.fixture:
        existing = json.loads((root / config.profiles.fixture).read_text(encoding="utf-8"))[
            "customers"
        ]
    ids = [f"L-{n:04d}" for n in range(1, customers + 1)]
    synthetic = [
        {"id": cid, "name": f"Load Customer {n}", "segment": "standard"}
        for n, cid in enumerate(ids, start=1)
    ]
    (root / "load-customers.json").write_text(
        json.dumps({"customers": [*existing, *synthetic]}), encoding="utf-8"
    )
    data.setdefault("profiles", {})["fixture"] = "load-customers.json"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    if config.calendar.fixture is None:
        raise BackendError("the load benchmark books appointments: set calendar.fixture")
    return root / config.calendar.fixture, ids


@contextmanager
def cluster(
    root: Path,
    *,
    workers: int,
    customers: int,
    shared: bool,
    logs: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Servers (``shared``: Redis and Chroma) and ``workers`` ready workers over ``root``;
    all stopped when the block ends."""
    from cxbot.config import load_config
    from cxbot.testing.servers import ChromaServer, RedisServer

    fixture, ids = prepare_project(root, customers)
    storage = root / load_config(root, env={}).storage.dir
    customer_key = "cust-" + secrets.token_urlsafe(16)
    admin_key = "admin-" + secrets.token_urlsafe(16)
    env = {
        CUSTOMER_KEY_ENV: customer_key,
        ADMIN_KEY_ENV: admin_key,
        "CXBOT_SESSION_SECRET": secrets.token_urlsafe(32),
        **(extra_env or {}),
    }
    started: list[Worker] = []
    with ExitStack() as stack:
        redis_url = None
        if shared:
            redis = stack.enter_context(RedisServer(log=logs / "redis.log"))
            chroma = stack.enter_context(
                ChromaServer(logs / "chroma-data", log=logs / "chroma.log")
            )
            redis_url = redis.url
            env["CXBOT_STORAGE__REDIS_URL"] = redis.url
            env["CXBOT_STORAGE__CHROMA_URL"] = chroma.url
            ingested = (storage / "chroma").is_dir() and (storage / "ingest.sqlite").is_file()
            if ingested:  # the project's vectors to the server, as ingest would put them
                _copy_vectors(storage / "chroma", chroma.url)
            else:  # the first worker ingests into the server with a fresh manifest and index
                for name in ("ingest.sqlite", "lexical.sqlite"):
                    for suffix in ("", "-wal", "-shm"):
                        (storage / f"{name}{suffix}").unlink(missing_ok=True)
        stack.callback(_stop_all, started)
        # one worker first when it may have to train the intent model or ingest
        trained = (storage / "nlu").is_dir() and any((storage / "nlu").iterdir())
        first = workers if trained else 1
        started += [start_worker(root, env, logs / f"worker-{n}.log") for n in range(1, first + 1)]
        wait_ready(started[0])
        _ingest(started[0], admin_key)  # nothing to do when the vectors are in place
        started += [
            start_worker(root, env, logs / f"worker-{n}.log") for n in range(first + 1, workers + 1)
        ]
        for worker in started[1:]:
            wait_ready(worker)
        yield Cluster(
            root=root,
            workers=started,
            customer_key=customer_key,
            redis_url=redis_url,
            fixture=fixture,
            customers=tuple(ids),
            booking_pairs=_booking_pairs(fixture),
        )


def _copy_vectors(local: Path, url: str) -> None:
    """Copy every collection of the embedded Chroma store at ``local`` to the server at
    ``url`` (in a child process, which keeps chromadb's clients out of this one)."""
    done = subprocess.run(
        [sys.executable, "-m", "cxbot.loadtest", "copy-vectors", str(local), url],
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise BackendError(f"copying the vectors to {url} failed: {done.stderr[-2000:]}")


def _copy_vectors_worker(local: Path, url: str, batch: int = 1000) -> None:
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    source = chromadb.PersistentClient(path=str(local), settings=settings)
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
    target = chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
    for listed in source.list_collections():
        name = listed if isinstance(listed, str) else listed.name
        collection = source.get_collection(name)
        into = target.get_or_create_collection(
            name, metadata=collection.metadata or {"hnsw:space": "cosine"}, embedding_function=None
        )
        data: Any = collection.get(include=["documents", "metadatas", "embeddings"])
        ids = data["ids"]
        for start in range(0, len(ids), batch):
            end = start + batch
            into.upsert(
                ids=ids[start:end],
                embeddings=data["embeddings"][start:end],
                documents=(data["documents"] or [])[start:end] or None,
                metadatas=(data["metadatas"] or [])[start:end] or None,
            )


def _stop_all(workers: Sequence[Worker]) -> None:
    for worker in workers:
        worker.stop()


def _ingest(worker: Worker, admin_key: str) -> None:
    request = urllib.request.Request(
        worker.url + "/v1/admin/ingest",
        method="POST",
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        report = json.loads(response.read())
    if report["errors"] or not report["chunks_total"]:
        raise BackendError(f"ingest through the first worker failed: {report}")


def _booking_pairs(fixture: Path) -> tuple[tuple[str, str], ...]:
    from cxbot.flows.actions.calendar import read_fixture

    parsed = read_fixture(fixture)
    return tuple(sorted({(branch, t) for _, _, branch, topics in parsed.advisors for t in topics}))


# -- simulated customers ----------------------------------------------------------------
@dataclass
class _Transcript:
    customer_id: str
    conversation_id: str = ""
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    failed: int = 0
    references: list[tuple[str, str]] = field(default_factory=list)
    """(reference, branch) of each booking confirmed to this customer."""


class _Client:
    """Round-robin over the workers, request by request; retries keep the message id."""

    def __init__(self, http: httpx.AsyncClient, ports: Sequence[int], attempts: int) -> None:
        self.http = http
        self.ports = list(ports)
        self._next = itertools.count()
        self.attempts = attempts
        self.retries = 0
        self.errors: list[str] = []

    async def post(
        self, path: str, token: str, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, float]:
        import httpx

        started = time.perf_counter()
        for attempt in range(self.attempts):
            port = self.ports[next(self._next) % len(self.ports)]
            try:
                response = await self.http.post(
                    f"http://127.0.0.1:{port}{path}",
                    json=dict(body),
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code == 200:
                    data: dict[str, Any] = response.json()
                    return data, (time.perf_counter() - started) * 1000
                problem = f"{path}: HTTP {response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                problem = f"{path}: {type(exc).__name__} {exc}"
            if len(self.errors) < 10:
                self.errors.append(problem)
            if attempt + 1 < self.attempts:
                self.retries += 1
                await asyncio.sleep(0.2 * (attempt + 1))
        return None, (time.perf_counter() - started) * 1000


def _next_message(
    turn: int, last: str | None, plan: Iterator[str], question: Callable[[], str]
) -> str:
    if last is not None:
        if "Shall I book it?" in last:
            return "yes please"
        if "already taken" in last:
            options = _OPTION.findall(last)
            if options:
                return str(options[0])
    if turn % BOOK_EVERY == 0:
        return next(plan)
    return question()


async def _customer(
    n: int,
    cluster: Cluster,
    client: _Client,
    turns: int,
    latencies: list[float],
    deadline: float,
) -> _Transcript:
    transcript = _Transcript(cluster.customers[n])
    opened, _ = await client.post(
        "/v1/sessions", cluster.customer_key, {"customer_id": transcript.customer_id}
    )
    if opened is None:
        transcript.failed = turns
        return transcript
    transcript.conversation_id = cid = opened["conversation_id"]
    token = opened["token"]
    pairs = cluster.booking_pairs

    def bookings() -> Iterator[str]:
        for k in itertools.count(n):
            branch, topic = pairs[k % len(pairs)]
            day, hour = DAYS[k % len(DAYS)], HOURS[(k // len(DAYS)) % len(HOURS)]
            yield f"I'd like to book a {topic} appointment at {branch} {day} at {hour}"

    plan = bookings()
    questions = itertools.cycle(QUESTIONS[n % len(QUESTIONS) :] + QUESTIONS[: n % len(QUESTIONS)])
    branch = ""
    last: str | None = None
    for turn in range(turns):
        if time.monotonic() > deadline:
            transcript.failed += turns - turn
            break
        text = _next_message(turn, last, plan, lambda: next(questions))
        if text.startswith("I'd like to book"):
            branch = next(b for b, _ in pairs if f" at {b} " in text)
        reply, ms = await client.post(
            f"/v1/conversations/{cid}/messages", token, {"text": text, "message_id": f"m-{turn}"}
        )
        transcript.sent.append(text)
        if reply is None:
            transcript.failed += 1
            last = None
            continue
        latencies.append(ms)
        last = str(reply["text"])
        transcript.received.append(last)
        if "Your reference is" in last:
            transcript.references += [(ref, branch) for ref in _REFERENCE.findall(last)]
    return transcript


async def _drive(
    cluster: Cluster, turns: int, timeout_s: float, request_timeout_s: float
) -> tuple[list[_Transcript], list[float], float, _Client]:
    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(cluster.customers) * 2)
    async with httpx.AsyncClient(timeout=request_timeout_s, limits=limits) as http:
        client = _Client(http, [w.port for w in cluster.workers], attempts=3)
        deadline = time.monotonic() + timeout_s
        started = time.perf_counter()
        transcripts = await asyncio.gather(
            *(
                _customer(n, cluster, client, turns, latencies, deadline)
                for n in range(len(cluster.customers))
            )
        )
        seconds = time.perf_counter() - started
    return list(transcripts), latencies, seconds, client


# -- checks -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stored:
    user: list[str]
    bot: list[str]


def _stored_conversations(cluster: Cluster, ids: Sequence[str]) -> dict[str, _Stored]:
    from cxbot.config import load_config
    from cxbot.conversation.events import BotUttered, UserUttered
    from cxbot.conversation.store import ConversationStore, SQLiteConversationStore

    config = load_config(cluster.root, env={})
    store: ConversationStore
    if cluster.redis_url:
        from cxbot.conversation.redis_store import RedisConversationStore

        store = RedisConversationStore(cluster.redis_url, prefix=config.storage.redis_prefix)
    else:
        store = SQLiteConversationStore(cluster.root / config.storage.dir / "conversations.sqlite")
    try:
        out: dict[str, _Stored] = {}
        for cid in ids:
            events = store.events(cid)
            out[cid] = _Stored(
                user=[e.text for e in events if isinstance(e, UserUttered)],
                bot=[e.text for e in events if isinstance(e, BotUttered)],
            )
        return out
    finally:
        store.close()


def _booked(cluster: Cluster) -> list[tuple[str, str, str, str]]:
    """(id, customer, advisor, start) of every booked appointment."""
    from cxbot.config import load_config

    config = load_config(cluster.root, env={})
    if cluster.redis_url:
        from cxbot.flows.actions.redis_calendar import RedisCalendar

        calendar = RedisCalendar(
            cluster.redis_url, cluster.fixture, prefix=config.storage.redis_prefix
        )
        try:
            return [
                (a.id, a.customer_id, a.advisor, a.start.isoformat()) for a in calendar.booked()
            ]
        finally:
            calendar.close()
    path = cluster.root / config.storage.dir / "calendar.sqlite"
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT id, customer_id, advisor_id, start FROM appointments WHERE status = 'booked'"
        ).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def _check(
    cluster: Cluster, transcripts: Sequence[_Transcript], turns: int
) -> tuple[int, int, int, int]:
    """lost turns, crossed conversations, double bookings, confirmed bookings."""
    stored = _stored_conversations(
        cluster, [t.conversation_id for t in transcripts if t.conversation_id]
    )
    booked = _booked(cluster)
    owners = {apt: (customer, advisor) for apt, customer, advisor, _ in booked}
    lost = 0
    crossed = 0
    for t in transcripts:
        kept = stored.get(t.conversation_id, _Stored([], []))
        answered = len(t.received)
        lost += turns - answered  # unanswered, or never sent before the deadline
        lost += max(0, answered - len(kept.user))  # answered, but not in the store
        confirmed_elsewhere = any(
            owners.get(ref, ("", ""))[0] != t.customer_id for ref, _ in t.references
        )
        if (
            kept.user[: len(t.sent)] != t.sent[: len(kept.user)]
            or kept.bot[: len(t.received)] != t.received
            or confirmed_elsewhere
        ):
            crossed += 1
    slots = Counter((advisor, start) for _, _, advisor, start in booked)
    double = sum(count - 1 for count in slots.values() if count > 1)
    confirmed = sum(len(t.references) for t in transcripts)
    return lost, crossed, double, confirmed


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def load_phase(
    cluster: Cluster, *, turns: int, timeout_s: float, request_timeout_s: float = 120.0
) -> LoadMetrics:
    """Run the customers against ``cluster`` and check the stores afterwards."""
    transcripts, latencies, seconds, client = asyncio.run(
        _drive(cluster, turns, timeout_s, request_timeout_s)
    )
    lost, crossed, double, confirmed = _check(cluster, transcripts, turns)
    ordered = sorted(latencies)
    conflicts = sum("already taken" in text for t in transcripts for text in t.received)
    return LoadMetrics(
        lost_turns=lost,
        crossed_conversations=crossed,
        double_bookings=double,
        turns=len(latencies),
        turns_per_s=round(len(latencies) / seconds, 2) if seconds else 0.0,
        p50_ms=round(_quantile(ordered, 0.5), 1),
        p95_ms=round(_quantile(ordered, 0.95), 1),
        max_ms=round(ordered[-1], 1) if ordered else 0.0,
        seconds=round(seconds, 2),
        bookings=confirmed,
        conflicts=conflicts,
        retries=client.retries,
        errors=tuple(client.errors),
    )


# -- the benchmark ----------------------------------------------------------------------
def run_load(
    project: Path,
    *,
    workers: int = 4,
    customers: int = 50,
    turns: int = 20,
    baseline: bool = True,
    timeout_s: float = 900.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The load benchmark's JSON-ready report: ``metrics`` (``workers`` workers on Redis
    and a Chroma server) and, with ``baseline``, the same load on one worker with the
    embedded SQLite defaults."""
    if min(workers, customers, turns) < 1 or timeout_s <= 0:
        raise ValueError("workers, customers, turns and timeout must be positive")
    from cxbot.bench import _workspace, machine_description
    from cxbot.testing.servers import redis_server_binary

    if redis_server_binary() is None:
        raise BackendError("redis-server is not installed (apt-get install redis-server)")
    project = Path(project).resolve()
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    machine = machine_description()

    def phase(name: str, count: int, shared: bool) -> dict[str, Any]:
        if progress is not None:
            progress(name)
        with _workspace(project) as root:
            logs = root.parent / "logs"
            logs.mkdir()
            with cluster(root, workers=count, customers=customers, shared=shared, logs=logs) as c:
                metrics = load_phase(c, turns=turns, timeout_s=timeout_s)
        return {
            "workers": count,
            "stores": "redis + chroma server" if shared else "sqlite + embedded chroma",
            **asdict(metrics),
        }

    report: dict[str, Any] = {"machine": machine}
    report["metrics"] = phase("load: shared stores", workers, True)
    if baseline:
        report["baseline"] = phase("load: one worker, SQLite", 1, False)
        ours, base = report["metrics"], report["baseline"]
        report["throughput_ratio"] = (
            round(ours["turns_per_s"] / base["turns_per_s"], 2) if base["turns_per_s"] else None
        )
    report["settings"] = {
        "project": str(project),
        "workers": workers,
        "customers": customers,
        "turns": turns,
        "timeout_s": timeout_s,
        "distribution": "client-side round robin, request by request",
    }
    report["started_at"] = started_at.isoformat(timespec="seconds")
    report["duration_s"] = round(time.perf_counter() - started, 1)
    return report


def format_load_report(report: Mapping[str, Any]) -> str:
    """The report as plain text: one block per run, checks first."""
    lines = [f"cxbot bench load ({report.get('started_at')}, {report.get('duration_s')} s)"]
    machine = report.get("machine") or {}
    lines.append(
        f"machine: {machine.get('cpu_model')}, {machine.get('cores_usable')} cores, "
        f"Python {machine.get('python')}"
    )
    for name in ("metrics", "baseline"):
        block = report.get(name)
        if not block:
            continue
        lines.append(
            f"{name}: {block['workers']} worker(s), {block['stores']}: "
            f"{block['turns']} turns, {block['turns_per_s']} turns/s, "
            f"p50 {block['p50_ms']} ms, p95 {block['p95_ms']} ms | lost turns "
            f"{block['lost_turns']}, crossed conversations {block['crossed_conversations']}, "
            f"double bookings {block['double_bookings']} | bookings {block['bookings']}, "
            f"conflicts {block['conflicts']}, retries {block['retries']}"
        )
        lines += [f"  error: {e}" for e in block.get("errors") or ()]
    if report.get("throughput_ratio") is not None:
        lines.append(
            f"throughput, shared stores / one SQLite worker: {report['throughput_ratio']}x"
        )
    return "\n".join(lines) + "\n"


def _main(argv: Sequence[str]) -> int:
    """Child processes of the load benchmark."""
    match list(argv):
        case ["copy-vectors", local, url]:
            _copy_vectors_worker(Path(local), url)
        case _:
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
