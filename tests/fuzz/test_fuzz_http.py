"""Fuzzing the HTTP API: any JSON (or not JSON) body to the customer and agent endpoints,
through FastAPI's TestClient over a real assistant, is answered 2xx or 4xx — never 5xx."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fuzzing import SLOW_EXAMPLES, characters, default_examples, fuzz, json_values
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from cxbot.assistant import Assistant
from cxbot.embeddings import SentenceTransformerEmbedder
from cxbot.server import create_app
from cxbot.testing import FixedClock

NOW = datetime(2026, 11, 25, 10, 0)
KEYS = ("F_CUSTOMER", "F_SUPERVISOR")

bodies = st.one_of(
    json_values().map(json.dumps),
    st.fixed_dictionaries(
        {"text": st.text(characters, max_size=300) | json_values(3)},
        optional={
            "customer_id": st.none()
            | st.sampled_from(["C-1001", "nobody", "C-\ud800"])
            | json_values(2),
            "speaker": st.sampled_from(["customer", "agent", "bot"]) | json_values(2),
            "extra": json_values(2),
        },
    ).map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
routes = st.sampled_from(["sessions", "messages", "stream", "observe", "other-conversation"])
content_types = st.sampled_from(["application/json", "text/plain", None])


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory,
    ingested_project: Path,
    embedder: SentenceTransformerEmbedder,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    root = tmp_path_factory.mktemp("fuzz-http") / "project"
    shutil.copytree(ingested_project, root)
    yaml = YAML()
    path = root / "cxbot.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    data["server"] = {
        "keys": [
            {"key_env": "F_CUSTOMER", "role": "customer"},
            {"key_env": "F_SUPERVISOR", "role": "supervisor"},
        ]
    }
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    env = {name: secrets.token_urlsafe(12) for name in KEYS}
    env["CXBOT_SESSION_SECRET"] = secrets.token_urlsafe(32)
    bot = Assistant.from_dir(root, embedder=embedder, clock=FixedClock(NOW), env=env)
    bot.warm_up()
    with TestClient(create_app(bot, env=env)) as test_client:
        yield test_client, env
    bot.close()


def _run(client: TestClient, env: dict[str, str], examples: int) -> None:
    customer = {"Authorization": f"Bearer {env['F_CUSTOMER']}"}
    supervisor = {"Authorization": f"Bearer {env['F_SUPERVISOR']}"}

    def check(route: str, body: str, content_type: str | None) -> None:
        opened = client.post("/v1/sessions", json={}, headers=customer)
        assert opened.status_code == 200, opened.text
        cid, token = opened.json()["conversation_id"], opened.json()["token"]
        session = {"Authorization": f"Bearer {token}"}
        target: dict[str, tuple[str, dict[str, str]]] = {
            "sessions": ("/v1/sessions", customer),
            "messages": (f"/v1/conversations/{cid}/messages", session),
            "stream": (f"/v1/conversations/{cid}/messages/stream", session),
            "observe": (f"/v1/conversations/{cid}/observe", supervisor),
            "other-conversation": ("/v1/conversations/web-someone-else/messages", session),
        }
        url, headers = target[route]
        if content_type is not None:
            headers = {**headers, "Content-Type": content_type}
        response = client.post(url, content=body.encode("utf-8", "surrogatepass"), headers=headers)
        assert response.status_code < 500, (response.status_code, response.text)
        if route == "stream" and response.status_code == 200:
            assert "event: final" in response.text or "event: error" in response.text
        if response.status_code >= 400:
            detail: Any = response.json().get("detail")
            assert isinstance(detail, str) and detail

    fuzz(examples, check, routes, bodies, content_types)


def test_http_schemas_fuzz(client: tuple[TestClient, dict[str, str]]) -> None:
    _run(*client, default_examples(40))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 10,000 examples; minutes on a busy 2-core machine
def test_http_schemas_fuzz_10k(client: tuple[TestClient, dict[str, str]]) -> None:
    _run(*client, SLOW_EXAMPLES)
