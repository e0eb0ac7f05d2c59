"""Function tools the model may call: typed Python functions, schema derived, never hand-written.

A tool is a plain (sync or async) Python function with type hints and a Google-style docstring.
Its JSON schema comes from openai-agents' ``function_schema`` (the same derivation its
``function_tool`` decorator uses), so the schema cannot drift from the signature.

``ToolRegistry.run(name, arguments_json)`` always returns a JSON string: the tool's result, or
``{"error": "..."}`` for an unknown tool, malformed arguments, or a tool that raised. It keeps no
per-call state, so several calls may run concurrently (the bridge runs them by call id).
Sync tools run in a worker thread so they never block the caller's event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic
from agents.function_schema import FuncSchema, function_schema

__all__ = [
    "DEFAULT_TOOLS",
    "DEFAULT_TOOL_NAMES",
    "NO_TOOLS",
    "Tool",
    "ToolRegistry",
    "delayed_add",
    "echo_upper",
    "get_datetime",
]

log = logging.getLogger(__name__)

# How long delayed_add "thinks"; a module constant so the bridge tests can rely on it.
DELAYED_ADD_SECONDS = 1.0


@dataclass(frozen=True)
class Tool:
    """One callable tool and its derived schema."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    func: Callable[..., Any] = field(repr=False)
    schema: FuncSchema = field(repr=False, compare=False)

    @classmethod
    def from_function(cls, func: Callable[..., Any]) -> Tool:
        schema = function_schema(func)
        return cls(
            name=schema.name,
            description=schema.description or "",
            parameters=schema.params_json_schema,
            func=func,
            schema=schema,
        )

    def session_dict(self) -> dict[str, Any]:
        """The GA Realtime function tool object (``session.tools[]``)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": json.loads(json.dumps(self.parameters)),  # a private deep copy
        }


def _error(message: str) -> str:
    return json.dumps({"error": message})


def _to_json(value: Any) -> str:
    if isinstance(value, str):
        # A string result is passed on as a JSON string, so the output is always valid JSON.
        return json.dumps(value)
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str)


class ToolRegistry:
    """A fixed set of tools, looked up by name."""

    def __init__(self, tools: Iterable[Callable[..., Any] | Tool]):
        built: dict[str, Tool] = {}
        for item in tools:
            tool = item if isinstance(item, Tool) else Tool.from_function(item)
            if tool.name in built:
                raise ValueError(f"Two tools are named {tool.name!r}; tool names must be unique.")
            built[tool.name] = tool
        self._tools: Mapping[str, Tool] = built

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def session_tools(self, enabled: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """GA function tool dicts for the enabled tools (all tools if ``enabled`` is None),
        in registry order. Unknown names are ignored here (settings validates them)."""
        wanted = None if enabled is None else set(enabled)
        return [t.session_dict() for t in self._tools.values() if wanted is None or t.name in wanted]

    async def run(self, name: str, arguments_json: str | bytes | None) -> str:
        """Run one tool call; always returns a JSON string and never raises (except cancellation).
        Arguments the schema does not declare are ignored (the model sometimes adds some)."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return _error(f"Unknown tool {name!r}. Available tools: {known}.")
        raw = arguments_json if arguments_json not in (None, b"", "") else "{}"
        try:
            parsed = json.loads(raw)
        except (TypeError, ValueError) as exc:
            return _error(f"Arguments for {name} are not valid JSON: {exc}")
        if not isinstance(parsed, dict):
            return _error(f"Arguments for {name} must be a JSON object, got {type(parsed).__name__}.")
        try:
            model = tool.schema.params_pydantic_model.model_validate(parsed)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
            )
            return _error(f"Bad arguments for {name}: {problems}")
        args, kwargs = tool.schema.to_call_args(model)
        try:
            if inspect.iscoroutinefunction(tool.func):
                result = await tool.func(*args, **kwargs)
            else:
                result = await asyncio.to_thread(tool.func, *args, **kwargs)
            return _to_json(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a tool that raises must not end the conversation
            log.warning("tool %s raised %s: %s", name, type(exc).__name__, exc)
            return _error(f"{name} failed: {type(exc).__name__}: {exc}")


# --- the tools that ship ---------------------------------------------------------------------


def get_datetime() -> dict[str, str]:
    """Get the current local date and time of the server, with its time zone.

    Use this when the user asks what time or date it is.
    """
    now = datetime.now().astimezone()
    return {"datetime": now.isoformat(timespec="seconds"), "timezone": now.tzname() or ""}


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


async def delayed_add(a: float, b: float) -> dict[str, int | float]:
    """Add two numbers. It takes about a second to answer.

    Args:
        a: The first number.
        b: The second number.
    """
    await asyncio.sleep(DELAYED_ADD_SECONDS)
    return {"sum": _number(a + b)}


def echo_upper(text: str) -> dict[str, str]:
    """Repeat a text back in upper case.

    Args:
        text: The text to repeat in upper case.
    """
    return {"text": text.upper()}


DEFAULT_TOOLS = ToolRegistry([get_datetime, delayed_add, echo_upper])
NO_TOOLS = ToolRegistry([])  # a scenario's tools come from its agents (the library's session.update)
DEFAULT_TOOL_NAMES: tuple[str, ...] = DEFAULT_TOOLS.names
