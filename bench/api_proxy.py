"""What the studio's SDP proxy adds to placing a call: ``POST /api/v1/realtime/calls`` vs the same offer
sent straight to the provider's ``/realtime/calls`` (the baseline, measured in the same run).

    .venv/bin/python bench/api_proxy.py [--calls 10]

Both against one local engine (started here, loopback only). Each round: an aiortc client makes an
offer (audio and the ``oai-events`` data channel), places the call one way or the other (alternating,
so both see the same engine warmth), then waits for the data channel to open and hangs up. Printed:
median and p90 of the offer-to-answer time and of offer-to-open, per path, and the ratio of medians.
Through the studio the call also gets its sideband (tools, event log) before the answer returns.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2 as httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from openai import AsyncOpenAI
from starlette.applications import Starlette

from api.guard import ApiConfig
from api.routes import Api
from localengine.runner import start_engine
from realtime.external_calls import ExternalCalls
from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import SpeechTrack

TOKEN = "bench-token-0123456789abcdef"


async def one_call(place) -> tuple[float, float]:
    pc = RTCPeerConnection()
    pc.addTransceiver(SpeechTrack(), direction="sendrecv")
    channel = pc.createDataChannel("oai-events")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    began = time.perf_counter()
    answer, hangup = await place(pc.localDescription.sdp)
    answered = time.perf_counter() - began
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await asyncio.wait_for(opened.wait(), 15)
    open_s = time.perf_counter() - began
    await hangup()
    await pc.close()
    return answered, open_s


def summary(name: str, samples: list[tuple[float, float]]) -> tuple[float, float]:
    answer = sorted(s[0] * 1000 for s in samples)
    opened = sorted(s[1] * 1000 for s in samples)
    p90 = max(0, int(len(answer) * 0.9) - 1)
    print(
        f"{name:<16} answer median {statistics.median(answer):7.1f} ms  p90 {answer[p90]:7.1f} ms   "
        f"channel open median {statistics.median(opened):7.1f} ms  p90 {opened[p90]:7.1f} ms"
    )
    return statistics.median(answer), statistics.median(opened)


async def main(calls: int) -> None:
    with start_engine() as engine:
        settings = Settings(api_key="bench-key", base_url=engine.base_url, camera=CameraSettings(enabled=False))
        api = Api(ApiConfig(token=TOKEN, calls_per_minute=10_000), settings=lambda: settings, calls=ExternalCalls())
        studio = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Starlette(routes=api.routes())), base_url="http://studio"
        )
        provider = AsyncOpenAI(base_url=engine.base_url, api_key="bench-key", max_retries=0)
        session = settings.session_payload()
        auth = {"Authorization": f"Bearer {TOKEN}"}

        async def direct(offer: str):
            raw = await provider.realtime.calls.with_raw_response.create(sdp=offer, session=session)  # type: ignore[arg-type]
            call_id = raw.headers["location"].rstrip("/").rsplit("/", 1)[-1]
            return raw.http_response.text, lambda: provider.realtime.calls.hangup(call_id)

        async def proxied(offer: str):
            r = await studio.post(
                "/api/v1/realtime/calls", content=offer, headers={**auth, "Content-Type": "application/sdp"}
            )
            assert r.status_code == 201, r.text
            call_id = r.headers["x-call-id"]
            return r.text, lambda: studio.post(f"/api/v1/realtime/calls/{call_id}/hangup", headers=auth)

        results: dict[str, list[tuple[float, float]]] = {"direct": [], "through studio": []}
        await one_call(direct)  # warm-up, not counted
        for i in range(calls):
            for name, place in (("direct", direct), ("through studio", proxied))[:: 1 if i % 2 == 0 else -1]:
                results[name].append(await one_call(place))
            print(f"\r{i + 1}/{calls} rounds", end="", flush=True)
        print()
        base = summary("direct", results["direct"])
        prox = summary("through studio", results["through studio"])
        print(f"ratio (studio / direct): answer {prox[0] / base[0]:.2f}x, channel open {prox[1] / base[1]:.2f}x")
        await studio.aclose()
        await provider.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    asyncio.run(main(parser.parse_args().calls))
