"""Every polling fragment of the app is drawn through `ui.live.live_fragment` (see its docstring:
a bare `st.fragment` next to other elements can hide them on a busy machine)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_FILES = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]


def _bare_fragments(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("fragment", "experimental_fragment")
        and isinstance(node.value, ast.Name)
        and node.value.id == "st"
    ]


def test_only_live_fragment_makes_fragments():
    found = {
        str(p.relative_to(ROOT)): lines for p in APP_FILES if p.name != "live.py" and (lines := _bare_fragments(p))
    }
    assert found == {}, f"use ui.live.live_fragment instead of st.fragment: {found}"
    assert _bare_fragments(ROOT / "ui" / "live.py"), "live_fragment itself is built on st.fragment"
