"""The station's PLC handshake as an OPC UA server (asyncua): trigger in, verdict out.

A PLC does not call HTTP; it sets a bit and waits for bits. The station runs an OPC UA server
whose variables follow the handshake of vision systems on the factory floor (Cognex's
trigger/acknowledge/complete bits, and OPC 40100 Machine Vision's result fields where they fit):

1. The PLC writes ``PartId`` (optional) and sets ``Trigger`` (rising edge).
2. The station sets ``Acknowledge`` and ``Busy``, clears ``InspectionComplete`` and ``ResultValid``.
3. It takes the next frame from its source, posts it to the service, and writes ``Pass``,
   ``ResultCode``, ``Label``, ``Confidence``, ``InspectionId`` (the service's request id, OPC 40100's
   ResultId) and ``Error``; then ``ResultValid`` (a verdict came back), ``InspectionComplete`` and
   clears ``Busy``, in that order, so a PLC that sees Complete reads a finished result.
4. The PLC reads the result and clears ``Trigger``; the station clears ``Acknowledge``: ready again.

``ResultCode``: 0 pass, 1 fail, 2 review, 3 invalid (retake the frame), -1 no verdict (``Error``
says why; the part's record waits in the station's backlog and is resent, so the log loses
nothing). Node ids are strings in the namespace ``urn:defectscope:station``: ``Station.Trigger`` and
so on (README: the mapping to PLC tags).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inspection.types import Frame
from serving.station import PartResult, Pending, StationClient

log = logging.getLogger("defectscope.station")
NAMESPACE = "urn:defectscope:station"
CODES = {"pass": 0, "fail": 1, "review": 2, "invalid": 3}
POLL_S = 0.002  # how often the trigger bit is read: the handshake's added latency is at most this

INPUTS: dict[str, Any] = {"Trigger": False, "PartId": ""}
OUTPUTS: dict[str, Any] = {"Ready": False, "Acknowledge": False, "Busy": False, "InspectionComplete": False,
                           "ResultValid": False, "Pass": False, "ResultCode": -1, "Label": "", "Confidence": 0.0,
                           "InspectionId": "", "Error": "", "Inspections": 0}


@dataclass
class Handshake:
    """The result of one trigger, as the station saw it (for logs and tests)."""

    part_id: str
    result: PartResult
    trigger_to_complete_ms: float


class OpcUaStation:
    def __init__(self, frames: Iterator[Frame], client: StationClient, endpoint: str, *,
                 jpeg_quality: int = 90) -> None:
        self.frames = frames
        self.client = client
        self.endpoint = endpoint
        self.jpeg_quality = jpeg_quality
        self.nodes: dict[str, Any] = {}
        self.history: list[Handshake] = []
        self.namespace_index: int | None = None
        self.started = threading.Event()  # the server listens (set from its loop; waited on from anywhere)

    async def _setup(self) -> Any:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("defectscope station")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])  # plant networks add their own policy
        idx = await server.register_namespace(NAMESPACE)
        self.namespace_index = idx
        station = await server.nodes.objects.add_object(f"ns={idx};s=Station", "Station")
        kinds = {bool: ua.VariantType.Boolean, int: ua.VariantType.Int32, float: ua.VariantType.Double,
                 str: ua.VariantType.String}
        for name, value in {**INPUTS, **OUTPUTS}.items():
            node = await station.add_variable(f"ns={idx};s=Station.{name}", name, value, kinds[type(value)])
            if name in INPUTS:
                await node.set_writable()
            self.nodes[name] = node
        self._ua = ua
        self._kinds = kinds
        return server

    async def _write(self, **values: Any) -> None:
        for name, value in values.items():
            await self.nodes[name].write_value(self._ua.Variant(value, self._kinds[type(OUTPUTS[name])]))

    def _inspect(self, part_id: str) -> PartResult:
        """One frame to the service, one attempt (a PLC cannot wait for retries); runs off the server's loop."""
        frame = next(self.frames)
        pending = Pending.of(frame, part_id or f"{self.client.cfg.station_id}-{int(time.time() * 1000)}",
                             self.jpeg_quality)
        if not self.client.try_once(pending):
            self.client.backlog.append(pending)  # resent later: the log keeps every part
        else:
            self.client.resend_one()  # the service answers: catch up one part from the backlog
        return pending.result

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the handshake until ``stop`` is set."""
        server = await self._setup()
        loop = asyncio.get_running_loop()
        async with server:
            await self._write(Ready=True)
            self.started.set()
            last = False
            while not stop.is_set():
                trigger = bool(await self.nodes["Trigger"].read_value())
                if trigger and not last:
                    t0 = time.perf_counter()
                    await self._write(Acknowledge=True, Busy=True, InspectionComplete=False, ResultValid=False)
                    part_id = str(await self.nodes["PartId"].read_value() or "")
                    try:
                        r = await loop.run_in_executor(None, self._inspect, part_id)
                    except StopIteration:
                        r = PartResult(part_id, error="the frame source has no more frames")
                    await self._result(r)
                    self.history.append(Handshake(part_id, r, (time.perf_counter() - t0) * 1000))
                elif not trigger and last:
                    await self._write(Acknowledge=False)
                last = trigger
                await asyncio.sleep(POLL_S)
            await self._write(Ready=False)

    async def _result(self, r: PartResult) -> None:
        valid = r.verdict is not None
        await self._write(Pass=r.verdict == "pass", ResultCode=CODES.get(r.verdict or "", -1), Label=r.label or "",
                          Confidence=float(r.confidence or 0.0), InspectionId=r.request_id or "",
                          Error=r.error or "", Inspections=len(self.history) + 1)
        await self._write(ResultValid=valid)
        await self._write(InspectionComplete=True, Busy=False)
