"""``defectscope station --source sim --api URL``: a camera station feeding the service."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from defectscope.commands._common import console, err_console, fail, user_errors

if TYPE_CHECKING:
    from serving.station import PartResult, StationSummary

_COLOURS = {"pass": "green", "fail": "red", "review": "yellow", "invalid": "cyan"}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def print_part(r: PartResult) -> None:
    """One live line per part: verdict, label, confidence, latency and the simulator's truth."""
    if r.verdict is None:
        style = "red" if r.error and r.error.startswith("refused") else "magenta"
        console.print(f"[{style}]{'error' if style == 'red' else 'unsent':<6}[/] {r.part_id}  {r.error}",
                      highlight=False)
        return
    truth = f"  truth={r.truth}" if r.truth is not None else ""
    again = "  (resent)" if r.resent else ""
    console.print(f"[{_COLOURS[r.verdict]}]{r.verdict:<6}[/] {r.part_id}  label={r.label} "
                  f"conf={r.confidence:.3f}  {_fmt(r.latency_ms)} ms{truth}{again}", highlight=False)


def print_summary(summary: StationSummary) -> bool:
    """The end-of-run summary; False when parts were left unanswered."""
    c = summary.counts
    tput = summary.parts / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    console.print(
        f"[bold]{summary.parts} parts[/] in {summary.elapsed_s:.1f} s ({tput:.1f}/s): "
        f"[green]pass {c['pass']}[/]  [red]fail {c['fail']}[/]  [yellow]review {c['review']}[/]  "
        + (f"[cyan]invalid {c['invalid']}[/]  " if c["invalid"] else "") +
        f"error {c['error']}  unsent {c['unsent']}   latency p50 {_fmt(summary.percentile(50))} / "
        f"p95 {_fmt(summary.percentile(95))} / p99 {_fmt(summary.percentile(99))} ms", highlight=False)
    if summary.truth_checked:
        console.print(f"agrees with the simulator's ground truth on {summary.truth_agree}/{summary.truth_checked} "
                      "pass/fail verdicts", highlight=False)
    if summary.unsent_file is not None:
        err_console.print(f"{c['unsent']} parts were not answered; kept in {summary.unsent_file}", highlight=False)
        return False
    return True


@user_errors
def station_cmd(
    source: str = typer.Option("sim", help="sim, a camera index (0), a video/RTSP URL, or an image folder."),
    api: str = typer.Option("http://127.0.0.1:8000", help="The service's base URL."),
    api_key: str | None = typer.Option(None, envvar="DEFECTSCOPE_API_KEY", show_envvar=True,
                                       help="Station API key (better from the environment)."),
    station_id: str = typer.Option("station-1", help="Sent as X-Station-Id; shows in metrics and the log."),
    rate: float | None = typer.Option(2.0, min=0.0, help="Parts per second (0: as fast as answered)."),
    count: int | None = typer.Option(None, min=1, help="Stop after this many parts."),
    duration: float | None = typer.Option(None, min=0.0, help="Stop after this many seconds "
                                          "(default: DEFECTSCOPE_STOP_AFTER_S, else run until Ctrl-C)."),
    seed: int | None = typer.Option(None, help="Seed of the simulated camera."),
    jpeg_quality: int = typer.Option(90, min=1, max=100),
    retries: int = typer.Option(4, min=0, help="Retries per part while the service is down or busy."),
    unsent: Path = typer.Option(Path("station-unsent.jsonl"), help="Where parts never answered are kept."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Summary only, no line per part."),
    process: str | None = typer.Option(None, help="Send each part's process parameters (X-Process): 'sim' for "
                                       "the simulated line's state (belt speed, temperature, tool wear, ...), or a "
                                       "CSV/JSON table with a row per image of a folder source."),
    opcua: str | None = typer.Option(None, help="Wait for a PLC instead of running free: serve the trigger / "
                                     "result handshake over OPC UA at this endpoint, e.g. "
                                     "opc.tcp://0.0.0.0:4840/defectscope/ (README: node ids and PLC tags)."),
) -> None:
    """Capture frames, post each as JPEG to /v1/inspect, print a line per part and a summary."""
    import signal
    import threading

    from serving.station import StationConfig, open_frames, run_station

    options, table = _process_source(process, source)

    if duration is None and os.environ.get("DEFECTSCOPE_STOP_AFTER_S"):
        try:
            duration = float(os.environ["DEFECTSCOPE_STOP_AFTER_S"])
        except ValueError:
            fail("DEFECTSCOPE_STOP_AFTER_S must be a number of seconds")
    # the frame source paces itself (a live camera by its own clock), so the client does not pace again
    cfg = StationConfig(api=api, api_key=api_key, station_id=station_id, rate=None, count=count,
                        duration=duration, jpeg_quality=jpeg_quality, retries=retries, unsent_path=unsent)

    show = (lambda r: None) if quiet else print_part

    stop = threading.Event()

    def on_ctrl_c(*_: object) -> None:  # first Ctrl-C: finish the part in hand, then the summary
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one stops at once

    if opcua is not None:
        _serve_opcua(opcua, open_frames(source, rate=None, seed=seed, **options), cfg, table, Path(source))
        return
    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        with open_frames(source, rate=rate or None, seed=seed, **options) as frames:
            if table is not None:
                from serving.process_sidecar import with_process

                frames = with_process(frames, table, Path(source))
            summary = run_station(frames, cfg, on_result=show, stop=stop)
    finally:
        signal.signal(signal.SIGINT, previous)
    if not print_summary(summary):
        raise typer.Exit(1)


def _serve_opcua(endpoint: str, source: Any, cfg: Any, table: dict[str, Any] | None, root: Path) -> None:
    """The PLC handshake until Ctrl-C: a frame per trigger, the verdict back as OPC UA variables."""
    import asyncio

    from serving.opcua_station import OpcUaStation
    from serving.station import StationClient

    client = StationClient(cfg)
    with source as frames:
        if table is not None:
            from serving.process_sidecar import with_process

            frames = with_process(frames, table, root)
        station = OpcUaStation(iter(frames), client, endpoint, jpeg_quality=cfg.jpeg_quality)
        console.print(f"OPC UA handshake at {endpoint} (namespace urn:defectscope:station); Ctrl-C stops",
                      highlight=False)
        try:
            asyncio.run(station.serve(asyncio.Event()))
        except KeyboardInterrupt:
            pass
        finally:
            if client.backlog and cfg.unsent_path is not None:
                client.write_unsent(cfg.unsent_path)
                err_console.print(f"{len(client.backlog)} parts were not answered; kept in {cfg.unsent_path}")
            client.close()
    console.print(f"{len(station.history)} inspections", highlight=False)


def _process_source(process: str | None, source: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(frame source options, sidecar table) for ``--process``."""
    if process is None:
        return {}, None
    is_sim = source == "sim" or source.startswith("sim:")
    if process == "sim":
        if not is_sim:
            fail("--process sim needs the simulated camera (--source sim); give a folder source a CSV/JSON table")
        from datasets.simulator.process import ProcessDrivers

        return {"process": ProcessDrivers()}, None
    if is_sim or not Path(source).is_dir():
        fail("a process table (--process FILE) goes with an image folder source (--source DIR); "
             "the simulated camera takes --process sim")
    from serving.process_sidecar import read_process_table

    return {}, read_process_table(Path(process))


def register(app: typer.Typer) -> None:
    app.command("station")(station_cmd)
