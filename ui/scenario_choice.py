"""Which scenario a session may run: the built-ins, plus the one configured on this server.

A scenario spec can name a Python file (`path/to/file.py:attr`), and loading it runs that code, so a
spec never comes from the page: the sidebar offers only these choices, and a share link or preset
naming anything else falls back to the default scenario (`checked_scenario` says so)."""

from __future__ import annotations

from realtime.settings import Settings
from scenarios import BUILT_IN_SCENARIOS, DEFAULT_SCENARIO, agent_label
from ui.format import escape_markdown

SCENARIO_LABELS: dict[str, str] = {
    "assistant": "Assistant (default)",
    "front_desk": "Front desk (handoffs)",
    "supervisor": "Supervisor",
    "guarded": "Guarded (guardrail, approval)",
}
_SHOWN_LIMIT = 80


def scenario_options(configured: str) -> tuple[str, ...]:
    """The built-ins, then the server's configured scenario when it is not one of them."""
    built_in = tuple(BUILT_IN_SCENARIOS)
    spec = configured.strip()
    return built_in if not spec or spec in built_in else (*built_in, spec)


def scenario_label(spec: str) -> str:
    """A built-in's readable name; a custom scenario's spec itself (the user wrote it)."""
    if spec in SCENARIO_LABELS:
        return SCENARIO_LABELS[spec]
    return agent_label(spec) if spec in BUILT_IN_SCENARIOS else spec


def is_allowed(spec: str, configured: str) -> bool:
    return spec in scenario_options(configured)


def checked_scenario(settings: Settings, configured: str, *, what: str = "share link") -> tuple[Settings, str | None]:
    """`settings` as they are when their scenario may run here; otherwise with the default scenario,
    and a sentence saying so (markdown-safe)."""
    spec = settings.scenario
    if is_allowed(spec, configured):
        return settings, None
    shown = spec if len(spec) <= _SHOWN_LIMIT else spec[: _SHOWN_LIMIT - 1] + "…"
    note = (
        f"The {what} names the scenario “{escape_markdown(shown)}”, which is neither built in nor "
        f"configured on this server, so it was not loaded: the default scenario "
        f"({scenario_label(DEFAULT_SCENARIO)}) is used instead."
    )
    return settings.replace(scenario=DEFAULT_SCENARIO), note
