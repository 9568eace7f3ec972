"""Two ``cxbot serve`` workers on one Redis and one Chroma server, reached request by
request in turn: simulated customers lose no turn, never see another's conversation and
never share an advisor slot; a worker killed (SIGKILL) mid-conversation leaves it to the
other worker with its slots intact. The full run (4 workers, 50 customers, 20 turns each,
beside one SQLite worker) is ``cxbot bench load``, in the slow test at the end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cxbot.cli import app
from cxbot.conversation.events import UserUttered
from cxbot.conversation.redis_store import RedisConversationStore
from cxbot.loadtest import Cluster, cluster, load_phase
from cxbot.testing.servers import redis_server_binary

pytestmark = pytest.mark.integration  # spawns redis-server, a Chroma server and workers


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, ingested_project: Path) -> Iterator[Cluster]:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    base = tmp_path_factory.mktemp("load")
    root = base / "project"
    shutil.copytree(ingested_project, root)
    logs = base / "logs"
    logs.mkdir()
    env = {"CXBOT_STORAGE__LOCK_TTL_S": "2"}  # a killed worker's lock frees quickly
    with cluster(root, workers=2, customers=5, shared=True, logs=logs, extra_env=env) as c:
        yield c


def test_customers_on_two_workers_keep_their_own_turns_and_slots(workers: Cluster) -> None:
    metrics = load_phase(workers, turns=4, timeout_s=180)
    assert metrics.errors == ()
    assert (metrics.lost_turns, metrics.crossed_conversations, metrics.double_bookings) == (
        0,
        0,
        0,
    )
    assert metrics.turns == 5 * 4
    assert metrics.bookings >= 1  # the script's bookings did reach the calendar
    assert metrics.p95_ms > 0 and metrics.turns_per_s > 0


def _post(url: str, path: str, token: str, body: dict[str, str]) -> dict[str, object]:
    response = httpx.post(
        url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
    )
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_a_killed_worker_leaves_the_conversation_to_another(workers: Cluster) -> None:
    first, second = workers.workers
    session = _post(first.url, "/v1/sessions", workers.customer_key, {"customer_id": "L-0005"})
    cid, token = str(session["conversation_id"]), str(session["token"])
    path = f"/v1/conversations/{cid}/messages"
    _post(first.url, path, token, {"text": "I'd like to book an appointment", "message_id": "1"})
    _post(second.url, path, token, {"text": "Old Town please", "message_id": "2"})
    _post(first.url, path, token, {"text": "about my mortgage", "message_id": "3"})

    # the next message reaches the first worker, which is killed while it may be answering
    body = {"text": "next Thursday", "message_id": "4"}
    outcome: list[str] = []

    def send() -> None:
        try:
            httpx.post(first.url + path, json=body, headers={"Authorization": f"Bearer {token}"})
            outcome.append("answered before the kill")
        except httpx.HTTPError as exc:  # the worker died under the request
            outcome.append(type(exc).__name__)

    sent = threading.Thread(target=send)
    sent.start()
    time.sleep(0.05)
    first.kill()
    sent.join()
    assert len(outcome) == 1
    # the client retries the same message on the other worker: one turn, whoever ran it
    retried = _post(second.url, path, token, body)
    assert "time" in str(retried["text"]).lower()

    store = RedisConversationStore(str(workers.redis_url))
    state = store.load(cid)
    assert state.flow is not None
    assert state.flow.slots["branch"] == "Old Town"
    assert state.flow.slots["topic"] == "mortgage"
    assert "date" in state.flow.slots
    said = [e.text for e in store.events(cid) if isinstance(e, UserUttered)]
    assert said.count("next Thursday") == 1

    _post(second.url, path, token, {"text": "11am", "message_id": "5"})
    done = _post(second.url, path, token, {"text": "yes please", "message_id": "6"})
    assert "Old Town" in str(done["text"]) and "APT-" in str(done["text"])
    store.close()


def test_load_runs_alone() -> None:
    result = CliRunner().invoke(app, ["bench", "load", "nlu"])
    assert result.exit_code == 2
    assert "runs alone" in result.output


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_bench_load_full(tmp_path: Path, ingested_project: Path) -> None:
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "cxbot.cli", "bench", "load"),
            *("--dir", str(ingested_project), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    for block in (report["metrics"], report["baseline"]):
        assert block["lost_turns"] == block["crossed_conversations"] == 0
        assert block["double_bookings"] == 0
        assert block["turns"] == 50 * 20
    assert report["metrics"]["workers"] == 4 and report["baseline"]["workers"] == 1
    assert report["metrics"]["conflicts"] > 0  # customers did compete for slots
