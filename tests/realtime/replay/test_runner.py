"""Replaying user turns against setups, headless through the SDK, against the local engine."""

from __future__ import annotations

import io
import wave

import pytest
from PIL import Image

from realtime.presets import PresetStore
from realtime.replay.compare import ReplayError, resolve_setups
from realtime.replay.model import ReplayTurn
from realtime.replay.runner import replay_setup
from realtime.settings import CameraSettings, Settings
from realtime.tools import DEFAULT_TOOLS


def jpeg(rgb) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), rgb).save(buf, format="JPEG")
    return buf.getvalue()


TURNS = (
    ReplayTurn(0, "spoken", "hello there"),
    ReplayTurn(1, "typed", "echo upper banana"),
    ReplayTurn(2, "typed", "what do you see?", (jpeg((20, 200, 30)),)),
)


def setup(engine, say: str, voice: str) -> Settings:
    return Settings(
        api_key="test-key",
        base_url=engine.base_url,
        camera=CameraSettings(enabled=False),
        instructions=f"Say: {say}",
        voice=voice,
    )


async def test_each_setup_answers_every_turn_in_its_own_way(engine):
    seen: list[int] = []
    alpha = await replay_setup(
        TURNS, setup(engine, "Alpha here.", "marin"), DEFAULT_TOOLS, name="a", label="A", on_turn=seen.append
    )
    beta = await replay_setup(TURNS, setup(engine, "Beta here.", "cedar"), DEFAULT_TOOLS, name="b", label="B")
    assert seen == [0, 1, 2]
    assert alpha.error is None and beta.error is None
    assert [r.turn for r in alpha.results] == [0, 1, 2]
    assert all(r.text.startswith("Alpha here.") for r in alpha.results), [r.text for r in alpha.results]
    assert all(r.text.startswith("Beta here.") for r in beta.results), [r.text for r in beta.results]
    tool = alpha.results[1]
    assert len(tool.tool_calls) == 1 and tool.tool_calls[0].startswith("echo_upper(")
    assert "BANANA" in tool.tool_calls[0] and "BANANA" in tool.text
    assert "green" in alpha.results[2].text
    for result in (*alpha.results, *beta.results):
        assert result.error is None
        assert result.first_text_ms is not None and result.first_audio_ms is not None
        assert result.output_tokens > 0
        assert result.audio_wav is not None
        with wave.open(io.BytesIO(result.audio_wav)) as w:
            assert w.getframerate() == 24_000 and w.getnframes() > 24_000 // 4  # a quarter second at least
    assert alpha.voice == "marin" and beta.voice == "cedar"
    assert alpha.results[0].audio_wav != beta.results[0].audio_wav  # two voices, not one
    assert 0 < alpha.seconds < 60


async def test_an_unreachable_provider_ends_the_run_with_a_clear_error():
    dead = Settings(api_key="test-key", base_url="http://127.0.0.1:9/v1", camera=CameraSettings(enabled=False))
    run = await replay_setup(TURNS, dead, DEFAULT_TOOLS, name="dead", label="Dead")
    assert run.results == ()
    assert run.error is not None and run.error.startswith("The replay stopped after 0 of 3 turns:")


async def test_an_engine_killed_mid_replay_keeps_what_came_before():
    from tests.chaos import EngineProcess

    engine = EngineProcess()
    engine.start()
    settings = Settings(api_key="test-key", base_url=engine.base_url, camera=CameraSettings(enabled=False))
    turns = tuple(ReplayTurn(i, "typed", f"say number {i}") for i in range(5))

    def kill_after_the_second(index: int) -> None:
        if index == 1:
            engine.kill9()

    try:
        run = await replay_setup(
            turns, settings, DEFAULT_TOOLS, name="k", label="Killed", on_turn=kill_after_the_second
        )
    finally:
        engine.kill()
    assert [r.turn for r in run.results][:2] == [0, 1]
    assert all(r.error is None and r.text for r in run.results[:2])
    assert run.error is not None and run.error.startswith("The replay stopped after ")
    assert run.error.endswith("the realtime server closed the connection.")
    assert len(run.results) < 5


async def test_a_spoken_turn_with_kept_voice_is_replayed_as_that_voice_not_its_transcript(engine):
    from tests.media import silence_pcm24k, speech_pcm24k

    voice = silence_pcm24k(300) + speech_pcm24k("hello there how are you") + silence_pcm24k(300)
    turns = (ReplayTurn(0, "spoken", "goodbye now", audio=voice), ReplayTurn(1, "typed", "echo upper kiwi"))
    plain = Settings(api_key="test-key", base_url=engine.base_url, camera=CameraSettings(enabled=False))
    run = await replay_setup(turns, plain, DEFAULT_TOOLS, name="current", label="Current")
    assert run.error is None, run.error
    heard, typed = run.results
    said = heard.text.lower()
    assert heard.error is None and "how are you" in said and "goodbye" not in said, heard.text  # heard, not read
    assert heard.first_audio_ms is not None and heard.audio_wav is not None
    assert "KIWI" in typed.text  # the turn after the audio one is answered on its own (turn detection off)


async def test_a_scenario_setup_runs_its_agents_handoff_and_all_and_a_tool_needing_approval_is_refused(engine):
    base = Settings(api_key="test-key", base_url=engine.base_url, camera=CameraSettings(enabled=False))
    turns = (
        ReplayTurn(0, "typed", "hello"),
        ReplayTurn(1, "typed", "transfer to billing"),
        ReplayTurn(2, "typed", "look up invoice 42"),
    )
    desk = await replay_setup(turns, base.replace(scenario="front_desk"), DEFAULT_TOOLS, name="s", label="S")
    assert desk.error is None, desk.error
    first, handoff, billing = desk.results
    assert first.text.startswith("Front desk here."), first.text
    assert any(c.startswith("transfer_to_billing(") for c in handoff.tool_calls), handoff.tool_calls
    assert billing.text.startswith("Billing here."), billing.text  # the agent handed to answers next
    assert all(r.audio_wav is not None and r.first_audio_ms is not None for r in desk.results)

    refund = (ReplayTurn(0, "typed", "issue refund 20"),)
    careful = await replay_setup(refund, base.replace(scenario="guarded"), DEFAULT_TOOLS, name="g", label="G")
    assert careful.error is None, careful.error
    (result,) = careful.results
    assert result.error is None and any(c.startswith("issue_refund(") for c in result.tool_calls)
    assert "refunded" not in result.text.lower(), result.text  # refused: nobody approves during a replay


async def test_an_unknown_scenario_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ReplayError, match=r"nowhere\.py"):
        resolve_setups(["scenario:nowhere.py:agent"], Settings(), PresetStore(tmp_path / "p.json"))
    (setup,) = resolve_setups(["scenario:front_desk"], Settings(), PresetStore(tmp_path / "p.json"))
    assert setup.settings.scenario == "front_desk" and setup.label == "Scenario “front_desk”"
