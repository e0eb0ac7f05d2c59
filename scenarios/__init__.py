"""Scenarios: the realtime agents a call runs, and how they are found.

A scenario is a starting ``agents.realtime.RealtimeAgent``; the agents it can hand off to (and
they in turn) come with it. The app runs it through openai-agents' ``RealtimeRunner``, which runs
its tools, handoffs, output guardrails and tool approvals. Every tool gets a ``ScenarioContext``
as its run context (``RunContextWrapper[ScenarioContext]``).

``load_scenario(spec)`` takes one of:

- a built-in name: ``assistant``, ``front_desk``, ``supervisor``, ``guarded`` (``BUILT_IN_SCENARIOS``);
- ``path/to/file.py:attr``: a Python file (absolute, or relative to the working directory). It is
  re-read on every call, so an edited file is picked up on the next load. While it is imported its
  own directory is at the front of ``sys.path`` (so it can import modules beside it) and removed
  again afterwards; the modules it imports that way are cached by Python as usual;
- ``package.module:attr``: a module on ``sys.path``. One that was imported before is reloaded, so
  edits show (the app's own packages and the built-ins are not reloaded).

``attr`` may be dotted (``module:agents.front``). Every problem ends in a ``ScenarioError`` whose
one-sentence message names the file or module and what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from inspect import getclosurevars
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from agents import Agent
from agents.handoffs import Handoff
from agents.realtime import RealtimeAgent

__all__ = [
    "BUILT_IN_SCENARIOS",
    "DEFAULT_SCENARIO",
    "ScenarioContext",
    "ScenarioError",
    "agent_label",
    "load_scenario",
    "reachable_agents",
]

BUILT_IN_SCENARIOS: dict[str, str] = {
    "assistant": "scenarios.assistant:agent",
    "front_desk": "scenarios.front_desk:agent",
    "supervisor": "scenarios.supervisor:agent",
    "guarded": "scenarios.guarded:agent",
}
DEFAULT_SCENARIO = "assistant"

# Top-level packages of the app itself: never reloaded by a ``package.module:attr`` spec.
_APP_PACKAGES = frozenset({"scenarios", "realtime", "localengine", "ui", "pages", "app"})
_SPEC_FORMS = "a built-in name ({names}), path/to/file.py:attr or package.module:attr"

# Loading touches process-wide state (sys.path, sys.modules); Streamlit runs sessions in threads.
_load_lock = threading.Lock()


@dataclass(frozen=True)
class ScenarioContext:
    """The run context every scenario tool receives: which backend the call runs on, and how to reach it."""

    backend: Literal["openai", "local"]
    base_url: str | None
    api_key: str = field(repr=False)


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message is one sentence for the page."""


def load_scenario(spec: str) -> RealtimeAgent[Any]:
    """The starting agent named by ``spec`` (see the module docstring for the forms)."""
    spec = spec.strip()
    if not spec:
        raise ScenarioError(f"No scenario given: use {_forms()}.")
    if spec in BUILT_IN_SCENARIOS:
        module_name, attr = BUILT_IN_SCENARIOS[spec].split(":")
        with _load_lock:
            module = _import_module(module_name, reload=False)
        return _agent_from(module, attr, f"built-in scenario {spec!r}")

    target, colon, attr = spec.rpartition(":")
    if not colon:
        hint = " (add ':attr', e.g. 'my_agents.py:agent')" if spec.endswith(".py") else ""
        raise ScenarioError(f"Scenario {spec!r} is not one of {_forms()}{hint}.")
    target, attr = target.strip(), attr.strip()
    if not target or not attr:
        raise ScenarioError(f"Scenario {spec!r} needs something on both sides of the ':', e.g. 'my_agents.py:agent'.")
    if not all(part.isidentifier() for part in attr.split(".")):
        raise ScenarioError(f"Scenario {spec!r}: {attr!r} after the ':' is not a Python name.")

    if _looks_like_path(target):
        with _load_lock:
            module = _import_file(Path(target).expanduser(), target)
        return _agent_from(module, attr, f"scenario file {target}")
    if not all(part.isidentifier() for part in target.split(".")):
        raise ScenarioError(f"Scenario {spec!r}: {target!r} is neither a .py file nor a module name.")
    with _load_lock:
        module = _import_module(target, reload=target.split(".")[0] not in _APP_PACKAGES)
    return _agent_from(module, attr, f"scenario module {target}")


def reachable_agents(agent: RealtimeAgent[Any]) -> tuple[RealtimeAgent[Any], ...]:
    """``agent`` and every agent reachable from it through handoffs, each once, breadth first.

    Handoffs may be agents or ``Handoff`` objects (``realtime_handoff(agent)`` or ``handoff(agent)``),
    resolved without invoking them; a custom ``Handoff`` whose target is only known by calling it
    is left out.
    """
    seen: dict[int, RealtimeAgent[Any]] = {id(agent): agent}
    queue: deque[RealtimeAgent[Any]] = deque([agent])
    while queue:
        for item in queue.popleft().handoffs:
            target = item if isinstance(item, RealtimeAgent) else _handoff_target(item)
            if target is not None and id(target) not in seen:
                seen[id(target)] = target
                queue.append(target)
    return tuple(seen.values())


def agent_label(name: str) -> str:
    """An agent's name for the page: ``"tech_support"`` -> ``"Tech support"``."""
    words = " ".join(name.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:]


# --- loading -----------------------------------------------------------------------------------


def _forms() -> str:
    return _SPEC_FORMS.format(names=", ".join(BUILT_IN_SCENARIOS))


def _looks_like_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target or target.startswith("~")


def _import_file(path: Path, shown: str) -> ModuleType:
    where = f"Scenario file {shown}"
    resolved = path.resolve()
    if not resolved.is_file():
        problem = "is a directory, not a .py file" if resolved.is_dir() else "was not found"
        raise ScenarioError(f"{where} {problem} (looked at {resolved}).")
    # One module name per file, so a reload replaces the previous import of the same file.
    name = "_scenario_file_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise ScenarioError(f"{where} cannot be imported as Python.")
    module = importlib.util.module_from_spec(module_spec)
    directory = str(resolved.parent)
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    sys.modules[name] = module  # dataclasses and pydantic look their module up while it runs
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ScenarioError(_import_problem(where, exc, resolved)) from exc
    finally:
        if added:
            try:
                sys.path.remove(directory)
            except ValueError:
                pass
    return module


def _import_module(name: str, *, reload: bool) -> ModuleType:
    where = f"Scenario module {name}"
    try:
        already = name in sys.modules
        module = importlib.import_module(name)
        if reload and already:
            module = importlib.reload(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name) and name[len(exc.name) : len(exc.name) + 1] in ("", "."):
            raise ScenarioError(f"{where} was not found (no module named {exc.name!r} on sys.path).") from exc
        raise ScenarioError(_import_problem(where, exc, None)) from exc
    except (Exception, SystemExit) as exc:
        raise ScenarioError(_import_problem(where, exc, None)) from exc
    return module


def _import_problem(where: str, exc: BaseException, path: Path | None) -> str:
    if isinstance(exc, SyntaxError):
        elsewhere = ""
        if exc.filename and (path is None or Path(exc.filename).resolve() != path):
            elsewhere = f" in {exc.filename}"
        return f"{where} has a syntax error{elsewhere} on line {exc.lineno}: {exc.msg}."
    line = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if path is not None:
        own = [f for f in frames if Path(f.filename).resolve() == path]
        if own:
            line = f" on line {own[-1].lineno}"
    message = str(exc).strip().rstrip(".")
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{where} raised {detail}{line} while it was imported."


def _agent_from(module: ModuleType, attr: str, where: str) -> RealtimeAgent[Any]:
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ScenarioError(f"{_capital(where)} has no attribute {attr!r}.") from None
    if isinstance(value, RealtimeAgent):
        return value
    hint = " (use agents.realtime.RealtimeAgent instead of agents.Agent)" if isinstance(value, Agent) else ""
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    raise ScenarioError(f"{_capital(where)}: {attr!r} is {article} {kind}, not a RealtimeAgent{hint}.")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _handoff_target(handoff: Any) -> RealtimeAgent[Any] | None:
    """The agent a ``Handoff`` leads to, found without calling it."""
    if not isinstance(handoff, Handoff):
        return None
    ref = getattr(handoff, "_agent_ref", None)  # set by agents.handoff(); private, so read defensively
    target = ref() if callable(ref) else None
    if isinstance(target, RealtimeAgent):
        return target
    # realtime_handoff(agent) keeps the agent only in the closure of the function it invokes.
    func: Any = handoff.on_invoke_handoff
    for _ in range(3):  # unwrap functools.partial(_invoke_handoff_with_redaction, impl)
        args = getattr(func, "args", None)
        if not args:
            break
        func = args[0]
    try:
        closure = getclosurevars(func).nonlocals if callable(func) else {}
    except (TypeError, ValueError):
        return None
    target = closure.get("agent")
    return target if isinstance(target, RealtimeAgent) else None
