"""``python -m realtime.replay``: replay a saved conversation against setups and write the comparison.

    python -m realtime.replay CONVERSATION --setup current --setup preset:Brief --out report.html
        [--expect expectations.json] [--concurrency 2]

CONVERSATION is a History conversation id (``REALTIME_HISTORY_DB``, default ``./data/realtime-studio.db``)
or a conversation exported from History as JSON. The setups run against the configured provider (OpenAI
with ``OPENAI_API_KEY``, else the local engine). The report is one self-contained HTML file, with the
comparison as JSON beside it (``report.json``). A progress bar per setup shows in the terminal.

Exit codes: 0 all replays ran (and every expectation held); 1 a replay failed or an expectation did
not hold (each named on stderr); 2 the replay could not start (unknown conversation, deleted preset, bad
file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from realtime.history.registry import default_db_path
from realtime.presets import PresetStore, presets_path
from realtime.replay.compare import DEFAULT_CONCURRENCY, ReplayError, compare, load_conversation, resolve_setups
from realtime.replay.expectations import ExpectationError, check, parse_expectations
from realtime.replay.plan import plan_turns
from realtime.replay.report import to_html, to_json
from realtime.settings import Settings, SettingsError


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m realtime.replay", description=__doc__.splitlines()[0])
    parser.add_argument("conversation", help="a History conversation id, or a conversation exported as JSON")
    parser.add_argument(
        "--setup", action="append", default=[], help="current, preset:NAME or scenario:NAME (repeat it)"
    )
    parser.add_argument("--out", default="replay-report.html", help="the HTML report (JSON is written beside it)")
    parser.add_argument("--expect", help="a JSON file of expectations per turn")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="setups replayed at once")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    db = default_db_path()
    try:
        expectations = parse_expectations(Path(args.expect).read_text(encoding="utf-8")) if args.expect else ()
        base = Settings.from_env(os.environ)
        record = load_conversation(args.conversation, db)
        setups = resolve_setups(args.setup, base, PresetStore(presets_path(db)))
    except (ReplayError, ExpectationError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print("replay: the configuration has problems: " + "; ".join(exc.problems), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"replay: could not read {args.expect}: {exc.strerror or exc}", file=sys.stderr)
        return 2

    turns = len(plan_turns(record))
    bars = {s.name: tqdm(total=turns, desc=s.label, unit="turn", position=i) for i, s in enumerate(setups)}
    try:
        comparison = asyncio.run(
            compare(record, setups, concurrency=args.concurrency, on_turn=lambda name, _i: bars[name].update(1))
        )
    except ReplayError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    finally:
        for bar in bars.values():
            bar.close()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_html(comparison), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(to_json(comparison), indent=1), encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.json')}")

    problems = [f"{run.label}: {run.error}" for run in comparison.runs[1:] if run.error]
    problems += [
        f"{run.label}, turn {r.turn + 1}: {r.error}" for run in comparison.runs[1:] for r in run.results if r.error
    ]
    problems += list(check(comparison, expectations))
    for line in problems:
        print(f"FAILED {line}", file=sys.stderr)
    for run in comparison.runs[1:]:
        print(f"{run.label}: {len(run.results)}/{turns} turns in {run.seconds:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
