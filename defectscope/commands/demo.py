"""``defectscope demo``: train a model if needed, serve it, and feed it a simulated line."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, fail, user_errors


@user_errors
def demo_cmd(
    model: Path = typer.Option(Path("models/demo"), help="Bundle to serve; trained here when missing."),
    data: Path = typer.Option(Path("data/demo"), help="Where the simulated training set is written."),
    port: int = typer.Option(8000, help="Port of the service on 127.0.0.1."),
    rate: float = typer.Option(4.0, min=0.1, help="Simulated parts per second."),
    seconds: float | None = typer.Option(
        None, min=1, envvar="DEFECTSCOPE_DEMO_SECONDS", show_envvar=True,
        help="Stop by itself after this many seconds (default: run until Ctrl-C)."),
    train_minutes: float = typer.Option(10.0, min=0.5, help="Time limit for training the demo model (the best "
                                        "epoch so far is kept)."),
    fault: str = typer.Option(
        "tool_fault@400:defect=scratch,rate=0.5",
        help="Scheduled fault of the simulated line (tool_fault@PART:defect=..,rate=..,end=PART or "
             "lighting_drift@PART:gain=..,ramp=..); 'none' for a clean line."),
) -> None:
    """The whole system on one machine: simulated camera -> HTTP service -> live verdicts."""
    import signal
    import threading

    from defectscope.commands.station import print_part, print_summary
    from defectscope.demo import DemoConfig, ensure_model, run_demo

    if seconds is None and os.environ.get("DEFECTSCOPE_STOP_AFTER_S"):
        try:
            seconds = float(os.environ["DEFECTSCOPE_STOP_AFTER_S"])
        except ValueError:
            fail("DEFECTSCOPE_STOP_AFTER_S must be a number of seconds")
    from datasets.simulator import parse_event

    fault_spec = None if fault.strip().lower() in ("", "none") else fault.strip()
    if fault_spec is not None:
        parse_event(fault_spec)  # a typo fails here, before any training
    cfg = DemoConfig(model=model, data=data, port=port, rate=rate, seconds=seconds, train_minutes=train_minutes,
                     fault=fault_spec)
    err_console.print("[bold yellow]WARNING: the demo service runs WITHOUT authentication, on 127.0.0.1 only. "
                      "Use 'defectscope serve' with API keys on a real line.[/]")
    say = lambda m: console.print(m, highlight=False)  # noqa: E731
    bundle = ensure_model(cfg, say)  # Ctrl-C here interrupts training (it resumes on the next run)
    stop = threading.Event()

    def on_ctrl_c(*_: object) -> None:
        stop.set()  # the station finishes the part in hand, then the service shuts down cleanly
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        summary = run_demo(cfg, bundle, stop, on_part=print_part, say=say)
    finally:
        signal.signal(signal.SIGINT, previous)
    print_summary(summary)
    console.print("demo stopped")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
