"""Named sidebar setups ("presets"): save, list, load, delete; three read-only built-ins.

A preset holds exactly what a share link holds (``realtime.share``: every session setting, the
camera, the tools, the phone line and the scenario; optionally the model), in the same
flat ``name -> string`` form, and loads through the same validation: whatever is wrong or missing
is skipped with a warning, the rest applies, nothing raises. Never the key, never the endpoint.

Stored as a JSON file next to the history database (``presets.json``), not inside it:
- presets stay usable when the history file is locked or damaged (history's failure modes do not
  take the sidebar down with them);
- a small, human-readable file people can copy to another machine or keep in version control;
- hand edits are expected, which is exactly why loading tolerates wrong fields.
Writes are atomic (temporary file + ``os.replace``) under a lock, re-reading the file first so two
sessions saving at once do not drop each other's presets. An unreadable file is moved aside (not
deleted) and the built-ins keep working.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserFacingError
from .history.aside import aside_path
from .settings import Settings
from .share import settings_from_query, settings_to_query

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_PRESETS", "Preset", "PresetError", "PresetStore", "presets_path"]

FILE_VERSION = 1
MAX_NAME = 60
PRESETS_FILE = "presets.json"


class PresetError(UserFacingError):
    """A preset operation the user asked for cannot be done; ``message`` says why."""


@dataclass(frozen=True)
class Preset:
    name: str
    params: tuple[tuple[str, str], ...]  # share-link parameters, in order
    builtin: bool = False
    saved_at: float | None = None

    @property
    def values(self) -> dict[str, str]:
        return dict(self.params)


def _builtin(name: str, **params: str) -> Preset:
    return Preset(name=name, params=tuple(params.items()), builtin=True)


BUILTIN_PRESETS: tuple[Preset, ...] = (
    _builtin(
        "Concise assistant",
        instructions=(
            "You are a concise voice assistant. Answer in one short sentence, no lists and no "
            "small talk. If you are unsure, say so briefly."
        ),
        voice="marin",
        turn="server_vad",
        threshold="0.5",
        silence_ms="500",
        padding_ms="300",
        output="audio",
        transcription="gpt-4o-mini-transcribe",
        camera="off",
        tools="get_datetime",
    ),
    _builtin(
        "Describe what you see",
        instructions=(
            "You look through the user's camera. When asked, or when the picture changes, "
            "describe what you see plainly: objects, colours, text and people's gestures. "
            "Do not guess at what you cannot see."
        ),
        voice="coral",
        turn="semantic_vad",
        eagerness="auto",
        output="audio",
        transcription="gpt-4o-mini-transcribe",
        camera="on",
        camera_interval="2",
        camera_max="1024",
        camera_detail="high",
        max_images="3",
        tools="none",
    ),
    _builtin(
        "Tool demo",
        instructions=(
            "You demonstrate function tools. Use get_datetime for the date or time, "
            "delayed_add to add numbers and echo_upper to shout text back. Say which tool you "
            "used and what it returned, in one sentence."
        ),
        voice="verse",
        turn="server_vad",
        output="audio",
        transcription="gpt-4o-mini-transcribe",
        camera="off",
        tools="get_datetime,delayed_add,echo_upper",
    ),
)
_BUILTIN_NAMES = {p.name.casefold(): p for p in BUILTIN_PRESETS}


def presets_path(history_db: str | os.PathLike[str]) -> Path:
    """``presets.json`` in the history database's folder."""
    return Path(history_db).with_name(PRESETS_FILE)


def _clean_name(name: Any) -> str:
    if not isinstance(name, str):
        raise PresetError("A preset name must be text.")
    clean = " ".join(name.split())
    if not clean:
        raise PresetError("Give the preset a name.")
    if len(clean) > MAX_NAME:
        raise PresetError(f"A preset name can be at most {MAX_NAME} characters.")
    return clean


class PresetStore:
    """The built-ins plus the presets saved in ``path`` (a JSON file)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._file_notice: str | None = None  # sticky: the file itself had a problem
        self._skipped_notice: str | None = None  # recomputed on each read: entries skipped
        self._lock = threading.Lock()

    @property
    def notice(self) -> str | None:
        """A sentence for the page when the file, or some entries in it, could not be used."""
        parts = [n for n in (self._file_notice, self._skipped_notice) if n]
        return " ".join(parts) or None

    # -- reading --------------------------------------------------------------------------------
    def _read(self) -> tuple[list[Preset], list[str]]:
        """Saved presets and a note for each entry that was skipped. Never raises."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            self._file_notice = (
                f"Saved presets cannot be read from {self.path} ({exc.strerror or exc}); built-ins still work."
            )
            return [], []
        try:
            doc = json.loads(raw) if raw.strip() else {"presets": []}
        except ValueError as exc:
            self._set_aside(f"is not valid JSON ({exc})")
            return [], []
        entries = doc.get("presets") if isinstance(doc, Mapping) else doc
        if not isinstance(entries, list):
            self._set_aside("holds no list of presets")
            return [], []
        presets: list[Preset] = []
        skipped: list[str] = []
        seen: set[str] = set()
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, Mapping):
                skipped.append(f"entry {n} is not an object")
                continue
            try:
                name = _clean_name(entry.get("name"))
            except PresetError as exc:
                skipped.append(f"entry {n}: {exc.message}")
                continue
            if name.casefold() in _BUILTIN_NAMES or name.casefold() in seen:
                skipped.append(f"entry {n}: the name {name!r} is already taken")
                continue
            settings = entry.get("settings")
            params: list[tuple[str, str]] = []
            if isinstance(settings, Mapping):
                for k, v in settings.items():
                    if isinstance(v, bool):
                        v = "on" if v else "off"
                    elif isinstance(v, (list, tuple)):
                        v = ",".join(str(x) for x in v) if v else "none"
                    elif v is None or isinstance(v, (dict,)):
                        v = "" if v is None else json.dumps(v)
                    params.append((str(k), str(v)))
            saved_at = entry.get("saved_at")
            seen.add(name.casefold())
            presets.append(
                Preset(
                    name=name,
                    params=tuple(params),
                    builtin=False,
                    saved_at=saved_at if isinstance(saved_at, (int, float)) else None,
                )
            )
        return presets, skipped

    def list(self) -> tuple[Preset, ...]:
        """Built-ins first, then saved presets by name."""
        saved, skipped = self._read()
        self._skipped_notice = (
            (f"Some saved presets in {self.path.name} were skipped: " + "; ".join(skipped) + ".") if skipped else None
        )
        return BUILTIN_PRESETS + tuple(sorted(saved, key=lambda p: p.name.casefold()))

    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.list())

    def get(self, name: str) -> Preset:
        key = " ".join(str(name).split()).casefold()
        for preset in self.list():
            if preset.name.casefold() == key:
                return preset
        raise PresetError(f"There is no preset named {name!r}.")

    def load(self, name: str, base: Settings) -> tuple[Settings, tuple[str, ...]]:
        """The settings of preset ``name`` applied over ``base``, and what was ignored.

        A preset that names nothing valid, or is missing fields, still loads: missing fields keep
        ``base``'s values, wrong ones are reported, never raised."""
        preset = self.get(name)
        settings, warnings = settings_from_query(preset.values, base, what="preset")
        if not preset.params:
            warnings = (*warnings, f"The preset {preset.name!r} holds no settings; nothing changed.")
        return settings, warnings

    # -- writing --------------------------------------------------------------------------------
    def save(self, name: str, settings: Settings, *, include_model: bool = True) -> Preset:
        """Save (or overwrite) a preset. Built-in names are reserved. Never stores the key."""
        clean = _clean_name(name)
        if clean.casefold() in _BUILTIN_NAMES:
            raise PresetError(f"{clean!r} is a built-in preset and cannot be overwritten; pick another name.")
        params = settings_to_query(settings, include_model=include_model)
        params.pop("v", None)
        preset = Preset(name=clean, params=tuple(params.items()), saved_at=time.time())
        with self._lock:
            saved, _ = self._read()
            kept = [p for p in saved if p.name.casefold() != clean.casefold()]
            self._write([*kept, preset])
        return preset

    def delete(self, name: str) -> bool:
        """Delete a saved preset; False if there was none. Built-ins cannot be deleted."""
        key = " ".join(str(name).split()).casefold()
        if key in _BUILTIN_NAMES:
            raise PresetError(f"{_BUILTIN_NAMES[key].name!r} is a built-in preset and cannot be deleted.")
        with self._lock:
            saved, _ = self._read()
            kept = [p for p in saved if p.name.casefold() != key]
            if len(kept) == len(saved):
                return False
            self._write(kept)
        return True

    def _write(self, presets: Sequence[Preset]) -> None:
        doc = {
            "version": FILE_VERSION,
            "presets": [{"name": p.name, "saved_at": p.saved_at, "settings": dict(p.params)} for p in presets],
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".presets-", suffix=".json", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(doc, f, indent=2, ensure_ascii=False)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise PresetError(f"The preset could not be saved to {self.path} ({exc.strerror or exc}).") from None

    def _set_aside(self, problem: str) -> None:
        """Move the unusable file aside (if it can be moved) and say so; built-ins keep working."""
        aside = aside_path(self.path)
        with contextlib.suppress(OSError):
            os.replace(self.path, aside)
        self._file_notice = (
            f"The presets file {self.path} {problem}. It was moved aside to {aside.name} (not deleted); "
            "built-ins still work and new presets go to a fresh file."
        )
        log.warning("%s", self._file_notice)
