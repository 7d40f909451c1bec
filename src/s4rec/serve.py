"""A trained model over HTTP (FastAPI; ``pip install -e ".[serve]"``).

``GET /health``, ``GET /model``, ``POST /recommend`` and ``POST /recommend/batch``; raw item
ids in and out, as ``Recommender``. A bad request is answered 4xx with a JSON ``detail``
saying what is wrong, and never stops the server.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from . import __version__
from .inference import Recommender

MAX_BODY_BYTES = 1 << 20  # a request body may hold 1 MiB
MAX_HISTORIES = 1024  # per batch request
MAX_K = 1000  # items per history: with MAX_HISTORIES, an answer stays bounded on any catalogue
Ids = list[str | int]  # raw item ids; numbers are read as their text


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    history: Ids
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    histories: list[Ids] = Field(max_length=MAX_HISTORIES)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True


def _items(top: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"item": item, "score": score} for item, score in top]


class _BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes (declared or streamed) is answered 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await _refuse(send, self.limit, declared.isdigit())
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _refuse(send, self.limit)


class _TooLarge(Exception):
    pass


async def _refuse(send: Any, limit: int, too_large: bool = True) -> None:
    detail = f"request body over {limit} bytes" if too_large else "bad Content-Length header"
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413 if too_large else 400,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def create_app(rec: Recommender, about: dict[str, Any]) -> FastAPI:
    """The FastAPI application serving ``rec``; ``about`` is what ``GET /model`` returns."""
    app = FastAPI(title="s4rec", version=__version__)
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)

    def answer(histories: list[Ids], k: int, exclude_seen: bool) -> list[list[dict[str, Any]]]:
        tops = rec.recommend([[str(i) for i in h] for h in histories], k, exclude_seen)
        return [_items(top) for top in tops]

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, err: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model")
    def model() -> dict[str, Any]:
        return about

    # async: scored on the event loop, with no hop to a worker thread; one request's model
    # work runs at a time, which is what a server on one torch thread does anyway
    @app.post("/recommend")
    async def recommend(req: RecommendRequest) -> dict[str, Any]:
        return {"items": answer([req.history], req.k, req.exclude_seen)[0]}

    @app.post("/recommend/batch")
    async def recommend_batch(req: BatchRequest) -> dict[str, Any]:
        tops = answer(req.histories, req.k, req.exclude_seen)
        return {"results": [{"items": top} for top in tops]}

    return app


def load_app(path: str, device: str = "cpu", onnx: bool = False) -> FastAPI:
    """``create_app`` for a checkpoint, read once without running code, or (``onnx``) for an
    ``s4rec export`` file ranked by onnxruntime."""
    if onnx:
        rec = Recommender.from_onnx(path)
        return create_app(rec, {**rec.about, "s4rec": __version__, "runtime": "onnxruntime"})
    rec = Recommender.load(path, device)
    cfg = rec.cfg
    about = {"method": cfg.method, "dataset": cfg.data.dataset, "items": len(rec.item_ids),
             "max_len": cfg.data.max_len, "final": cfg.train.final, "s4rec": __version__,
             "runtime": "torch"}  # fmt: skip
    return create_app(rec, about)
