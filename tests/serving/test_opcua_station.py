"""A PLC (an asyncua client) triggers an inspection over OPC UA and reads the verdict the service gave."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from serving.config import load_settings
from serving.opcua_station import NAMESPACE, OpcUaStation
from serving.server import free_port, start_in_background
from serving.station import StationClient, StationConfig, open_frames

pytest.importorskip("asyncua", reason="asyncua is not installed (pip install -e '.[dev]')")
pytestmark = pytest.mark.slow  # a real uvicorn and a real OPC UA server: a few seconds


@contextmanager
def _station_at(url: str, folder: Path, client: StationClient) -> Iterator[OpcUaStation]:
    """The station's OPC UA server on its own event loop (as ``defectscope station --opcua`` runs it)."""
    stop = asyncio.Event()
    with open_frames(str(folder), rate=None) as frames:
        station = OpcUaStation(iter(frames), client, url)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(station.serve(stop),), daemon=True)
        thread.start()
        try:
            assert station.started.wait(20)
            yield station
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            client.close()


def _images(folder: Path, n: int) -> list[bytes]:
    folder.mkdir()
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((60, 80, 3)) * 255).astype(np.uint8), (0, 0), 1 + i)
        cv2.imwrite(str(folder / f"part{i}.png"), img)
        out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


async def _plc(url: str, parts: list[str]) -> list[dict]:
    """What a PLC program does: write the part id, raise Trigger, wait for Complete, read, drop Trigger."""
    from asyncua import Client, ua

    results = []
    async with Client(url) as c:
        idx = await c.get_namespace_index(NAMESPACE)

        def node(name: str):
            return c.get_node(f"ns={idx};s=Station.{name}")

        while not await node("Ready").read_value():
            await asyncio.sleep(0.01)
        for part in parts:
            await node("PartId").write_value(ua.Variant(part, ua.VariantType.String))
            t0 = time.perf_counter()
            await node("Trigger").write_value(ua.Variant(True, ua.VariantType.Boolean))
            while not (await node("Acknowledge").read_value() and await node("InspectionComplete").read_value()):
                await asyncio.sleep(0.001)
            ms = (time.perf_counter() - t0) * 1000
            out = {n: await node(n).read_value() for n in ("ResultValid", "Pass", "ResultCode", "Label", "Confidence",
                                                           "InspectionId", "Error", "Busy")}
            await node("Trigger").write_value(ua.Variant(False, ua.VariantType.Boolean))
            while await node("Acknowledge").read_value():
                await asyncio.sleep(0.001)
            results.append({**out, "ms": ms})
    return results


def test_a_plc_trigger_gets_the_http_verdict_within_the_service_latency_plus_overhead(tmp_path, predictor) -> None:
    jpegs = _images(tmp_path / "frames", 4)
    settings = load_settings(port=0, verdict_db=tmp_path / "v.sqlite", auth_disabled=True)
    with start_in_background(settings, predictor) as server:
        expected, http_ms = [], []
        with httpx.Client(base_url=server.url) as http:  # the same frames straight over HTTP
            for data in jpegs:
                t0 = time.perf_counter()
                body = http.post("/v1/inspect", content=data, headers={"Content-Type": "image/jpeg"}).json()
                http_ms.append((time.perf_counter() - t0) * 1000)
                expected.append((body["verdict"], body["label"], round(body["confidence"], 5)))
        url = f"opc.tcp://127.0.0.1:{free_port()}/defectscope/"
        client = StationClient(StationConfig(api=server.url, station_id="cell-opc", unsent_path=None))
        with _station_at(url, tmp_path / "frames", client):
            got = asyncio.run(_plc(url, [f"P-{i}" for i in range(4)]))
        rows = httpx.get(f"{server.url}/v1/verdicts", params={"station": "cell-opc"}).json()["verdicts"]
    codes = {"pass": 0, "fail": 1, "review": 2, "invalid": 3}
    assert [(g["Label"], round(g["Confidence"], 5)) for g in got] == [(e[1], e[2]) for e in expected]
    assert [g["ResultCode"] for g in got] == [codes[e[0]] for e in expected]
    assert all(g["ResultValid"] and not g["Busy"] and g["Error"] == "" and g["Pass"] == (g["ResultCode"] == 0)
               for g in got)
    assert sorted(g["InspectionId"] for g in got) == sorted(r["request_id"] for r in rows)  # each in the log
    assert sorted(r["part_id"] for r in rows) == [f"P-{i}" for i in range(4)]
    overhead = np.median([g["ms"] for g in got]) - np.median(http_ms)
    print(f"OPC UA trigger -> complete: median {np.median([g['ms'] for g in got]):.1f} ms; HTTP alone "
          f"{np.median(http_ms):.1f} ms; overhead {overhead:.1f} ms")
    assert overhead < 100  # the handshake's polling and OPC UA round trips, not another inspection


def test_no_service_gives_the_plc_an_error_code_and_keeps_the_part(tmp_path) -> None:
    _images(tmp_path / "frames", 1)
    url = f"opc.tcp://127.0.0.1:{free_port()}/defectscope/"
    client = StationClient(StationConfig(api=f"http://127.0.0.1:{free_port()}", timeout=1.0, unsent_path=None))
    with _station_at(url, tmp_path / "frames", client):
        [got] = asyncio.run(_plc(url, ["P-0"]))
    assert got["ResultCode"] == -1 and not got["ResultValid"] and "unreachable" in got["Error"]
    assert len(client.backlog) == 1 and client.backlog[0].result.part_id == "P-0"  # resent when the service is back
