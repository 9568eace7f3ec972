"""The HTTP API of ``cxbot serve`` (optional extra ``cxbot[server]``: FastAPI, uvicorn)."""

from cxbot.server.app import create_app

__all__ = ["create_app"]
