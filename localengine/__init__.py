"""An offline server that speaks the OpenAI Realtime protocol (HTTP, WebSocket, WebRTC).

Run it alone with ``python -m localengine --host 127.0.0.1 --port 8765``, or embed it::

    from localengine import start_engine
    with start_engine() as engine:
        ...  # point any Realtime client at engine.base_url

See ``localengine/README.md``. This package never imports ``realtime``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import EngineConfig

if TYPE_CHECKING:
    from .runner import RunningEngine, start_engine

__all__ = ["EngineConfig", "RunningEngine", "start_engine"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. for EngineConfig) does not import aiortc/uvicorn.
    if name in ("start_engine", "RunningEngine"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'localengine' has no attribute {name!r}")
