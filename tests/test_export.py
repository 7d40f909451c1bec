"""ONNX export: the graph returns what the eager model ranks, for the encoders it accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip(
    "onnxruntime", reason="the export extra (onnx, onnxruntime) is not installed"
)

from conftest import run, tiny_sets  # noqa: E402
from s4rec.export import export_onnx  # noqa: E402
from s4rec.inference import Recommender  # noqa: E402


def trained(tmp_path: Path, method: str) -> Path:
    run("train", "--dataset", "synthetic", "--method", method, "--epochs", "1", "--no-progress",
        "--out", str(tmp_path / method), *tiny_sets(), "--set", "train.batch_size=64")  # fmt: skip
    return tmp_path / method / "best.pt"


@pytest.mark.parametrize("method", ["sasrec", "s4rec", "bert4rec", "gru4rec"])
def test_the_graph_ranks_as_the_recommender(tmp_path: Path, method: str) -> None:
    ckpt = trained(tmp_path, method)
    parity = export_onnx(ckpt, tmp_path / "m.onnx", k=7)
    assert parity["max_score_difference"] <= 1e-4 and parity["k"] == 7
    rec = Recommender.load(ckpt)
    histories = [rec.item_ids[:3], rec.item_ids[10:40], rec.item_ids[5:6]]  # one above max_len
    width = max(len(h) for h in histories)
    ids = np.zeros((len(histories), width), dtype=np.int64)
    for row, h in enumerate(histories):
        ids[row, width - len(h) :] = [rec.index[i] for i in h]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    scores, items = session.run(None, {"history": ids})
    expected = rec.recommend(histories, 7)
    assert [[rec.item_ids[i - 1] for i in row] for row in items.tolist()] == [
        [i for i, _ in top] for top in expected
    ]
    assert np.allclose(scores, [[v for _, v in top] for top in expected], atol=1e-4)


def test_a_model_it_cannot_export_is_a_clear_error(tmp_path: Path, capsys) -> None:
    ckpt = trained(tmp_path, "caser")  # scores known users only: no history-only graph
    with pytest.raises(SystemExit) as e:
        run("export", str(ckpt), "--out", str(tmp_path / "c.onnx"))
    assert e.value.code == 2
    assert "a caser model cannot be exported to ONNX" in capsys.readouterr().err
    assert not (tmp_path / "c.onnx").exists()


def test_export_command(tmp_path: Path, capsys) -> None:
    ckpt = trained(tmp_path, "sasrec")
    run("export", str(ckpt), "--format", "onnx", "-k", "5", "--out", str(tmp_path / "s.onnx"))
    assert "parity with the model checked" in capsys.readouterr().out
    assert (tmp_path / "s.onnx").stat().st_size > 0


def test_serving_the_onnx_file_answers_as_the_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from fastapi.testclient import TestClient

    from s4rec.serve import load_app

    ckpt = trained(tmp_path, "sasrec")
    export_onnx(ckpt, tmp_path / "m.onnx", k=8)
    eager = TestClient(load_app(str(ckpt)))
    graph = TestClient(load_app(str(tmp_path / "m.onnx"), onnx=True))
    rec = Recommender.load(ckpt)
    for body in ({"history": rec.item_ids[:4], "k": 8}, {"history": [], "k": 3},
                 {"history": rec.item_ids[20:60], "k": 1}):  # fmt: skip
        a, b = (
            eager.post("/recommend", json=body).json(),
            graph.post("/recommend", json=body).json(),
        )
        assert [x["item"] for x in a["items"]] == [x["item"] for x in b["items"]]
        assert np.allclose(
            [x["score"] for x in a["items"]], [x["score"] for x in b["items"]], atol=1e-4
        )
    assert graph.get("/model").json()["runtime"] == "onnxruntime"
    too_many = graph.post("/recommend", json={"history": rec.item_ids[:2], "k": 9})
    assert too_many.status_code == 422 and "top 8" in too_many.json()["detail"]
    with pytest.raises(ValueError, match="not an s4rec export"):
        import onnx

        plain = onnx.load(str(tmp_path / "m.onnx"))
        del plain.metadata_props[:]
        onnx.save(plain, str(tmp_path / "plain.onnx"))
        Recommender.from_onnx(tmp_path / "plain.onnx")


def test_a_file_onnxruntime_cannot_read_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "best.pt").write_bytes(b"PK\x03\x04 a checkpoint, not a graph")
    with pytest.raises(ValueError, match=r"best.pt: not a readable ONNX graph \("):
        Recommender.from_onnx(tmp_path / "best.pt")
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        Recommender.from_onnx(tmp_path / "missing.onnx")
