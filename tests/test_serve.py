"""The HTTP server: every endpoint and error case through FastAPI's test client, and the real
server on a loopback port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn, httpx) is not installed")
from fastapi.testclient import TestClient

from conftest import run, tiny_sets
from s4rec.inference import Recommender
from s4rec.serve import MAX_BODY_BYTES, MAX_HISTORIES, MAX_K, load_app


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve")
    run("train", "--dataset", "synthetic", "--epochs", "2", "--no-progress", "--out", str(out),
        *tiny_sets())  # fmt: skip
    return out / "best.pt"


@pytest.fixture(scope="module")
def client(checkpoint: Path) -> TestClient:
    return TestClient(load_app(str(checkpoint)))


@pytest.fixture(scope="module")
def rec(checkpoint: Path) -> Recommender:
    return Recommender.load(checkpoint)


def test_health_and_model(client: TestClient, rec: Recommender) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    about = client.get("/model").json()
    assert about["method"] == "sasrec" and about["items"] == len(rec.item_ids)
    assert about["final"] is False and about["max_len"] == rec.model.max_len


def test_recommend_equals_the_python_api(client: TestClient, rec: Recommender) -> None:
    history = rec.item_ids[:3]
    got = client.post("/recommend", json={"history": history, "k": 5}).json()["items"]
    expected = rec.recommend([history], 5)[0]
    assert [(x["item"], x["score"]) for x in got] == [(i, pytest.approx(v)) for i, v in expected]
    every = client.post("/recommend", json={"history": history, "k": 5, "exclude_seen": False})
    assert [x["item"] for x in every.json()["items"]] == [
        i for i, _ in rec.recommend([history], 5, exclude_seen=False)[0]
    ]
    assert len(rec.item_ids) < MAX_K  # a k beyond the catalogue lists every candidate, as the CLI
    every = client.post("/recommend", json={"history": history, "k": MAX_K}).json()["items"]
    assert sorted(x["item"] for x in every) == sorted(set(rec.item_ids) - set(history))


def test_batch_is_one_answer_per_history(client: TestClient, rec: Recommender) -> None:
    histories = [rec.item_ids[:2], [], rec.item_ids[5:9], [int(rec.item_ids[0])]]
    got = client.post("/recommend/batch", json={"histories": histories, "k": 4}).json()
    expected = rec.recommend([[str(i) for i in h] for h in histories], 4)
    assert [[x["item"] for x in r["items"]] for r in got["results"]] == [
        [i for i, _ in top] for top in expected
    ]


BAD = [
    ("/recommend", b"{not json", 422, "JSON decode error"),
    ("/recommend", json.dumps({"history": "1 2"}).encode(), 422, "list"),
    ("/recommend", json.dumps({"history": [1], "k": 0}).encode(), 422, "greater than or equal"),
    ("/recommend", json.dumps({"history": [1], "k": MAX_K + 1}).encode(), 422, "less than or equal"),
    ("/recommend", json.dumps({"history": ["1", "nope"]}).encode(), 422, "unknown item id(s) ['nope']"),
    ("/recommend", json.dumps({"history": [1], "extra": 1}).encode(), 422, "Extra inputs"),
    ("/recommend", json.dumps({"history": [[1]]}).encode(), 422, "string"),
    ("/recommend", b"[" * 100_000 + b"]" * 100_000, 400, "error parsing the body"),
    ("/recommend", b" " * (MAX_BODY_BYTES + 1), 413, "request body over"),
    ("/recommend/batch", json.dumps({"histories": [[1]] * (MAX_HISTORIES + 1)}).encode(), 422,
     "at most"),
    ("/recommend/batch", json.dumps({"histories": [1, 2]}).encode(), 422, "list"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "detail"), BAD, ids=[b[3] for b in BAD])
def test_bad_requests_get_a_4xx_that_says_why(
    client: TestClient, path: str, body: bytes, status: int, detail: str
) -> None:
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert detail in json.dumps(r.json()["detail"])
    assert client.get("/health").status_code == 200  # still serving


def test_wrong_content_type_and_method(client: TestClient) -> None:
    r = client.post("/recommend", content=b"history=1", headers={"content-type": "text/plain"})
    assert 400 <= r.status_code < 500
    assert client.get("/recommend").status_code == 405


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_real_server_on_a_loopback_port(checkpoint: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "s4rec", "serve", str(checkpoint), "--port", str(port),
           "--threads", "1"]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok"}
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not come up in 60 s"
                time.sleep(0.3)
        ids = json.loads(urllib.request.urlopen(f"{url}/model", timeout=5).read())
        body = json.dumps({"history": [], "k": 3}).encode()
        req = urllib.request.Request(f"{url}/recommend", body, {"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert len(json.loads(r.read())["items"]) == 3 and ids["items"] > 3
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_port_in_use_is_a_one_line_error(
    checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_:
            run("serve", str(checkpoint), "--port", str(port))
    assert exit_.value.code == 2
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in capsys.readouterr().err


def test_inference_serving_and_reports_never_load_the_trainer():
    code = (
        "import sys, s4rec, s4rec.inference, s4rec.serve, s4rec.report, s4rec.export;"
        "print('s4rec.train' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
