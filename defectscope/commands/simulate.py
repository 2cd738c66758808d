"""``defectscope simulate``: stream simulated frames to a folder or the console (no camera needed)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, fail, user_errors


@user_errors
def simulate_cmd(
    recipe: str = typer.Option("flange", help="Product recipe: flange or steel."),
    n: int = typer.Option(0, "--n", min=0, help="Stop after N frames (0: no limit)."),
    seconds: float = typer.Option(0.0, min=0, help="Stop after this many seconds (0: no limit)."),
    rate: str = typer.Option("2", help="Line rate: frames per second, or e.g. 120/min; 0 = as fast as possible."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the frames (JPEG) and ground_truth.jsonl."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same parts."),
    size: str = typer.Option("1280x1024", help="Frame size WIDTHxHEIGHT."),
    defect_rate: float = typer.Option(0.1, min=0, max=1, help="Share of parts with a random defect."),
    event: list[str] = typer.Option(None, "--event", help="Process event, e.g. lighting_drift@200:gain=0.6,ramp=100 "
                                    "or tool_fault@300:defect=scratch,rate=0.5 (repeatable)."),
    color: bool = typer.Option(False, "--color", help="Colour (BGR) frames instead of monochrome."),
) -> None:
    """Simulate a line: one line of ground truth per part on the console, frames saved with --out.

    Without --n or --seconds it runs until Ctrl-C.
    """
    import cv2

    from datasets.simulator import parse_event
    from datasets.simulator.camera import SimulatedCamera
    from defectscope.commands.dataset import parse_size
    from inspection.atomic import write_bytes_atomic
    from inspection.camera import parse_rate

    per_second = parse_rate(rate) if rate.strip() not in ("0", "0.0") else None
    events = [parse_event(e) for e in event or []]
    if out is not None:
        if out.exists() and not out.is_dir():
            fail(f"{out} is a file: give a folder for the frames")
        out.mkdir(parents=True, exist_ok=True)
    limit = n or None
    if seconds and per_second:  # paced: the frames that fit in the time, without waiting for one more
        fit = max(1, math.ceil(seconds * per_second - 1e-9))
        limit = min(limit or fit, fit)
    cam = SimulatedCamera(recipe, seed=seed, rate=per_second, n=limit, size=parse_size(size),
                          color="bgr" if color else "gray", defect_rate=defect_rate, events=events)
    start, count = time.monotonic(), 0
    log = (out / "ground_truth.jsonl").open("a") if out is not None else None
    try:
        with cam:
            for frame in cam:
                meta = dict(frame.meta)
                name = f"{recipe}_{seed}_{meta['part_index']:06d}.jpg"
                if out is not None and log is not None:
                    _, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    write_bytes_atomic(out / name, buf.tobytes())
                    log.write(json.dumps({"file": name, "timestamp": round(frame.timestamp, 3), **meta}) + "\n")
                    log.flush()
                events_txt = f" events={','.join(meta['events'])}" if meta["events"] else ""
                console.print(f"#{meta['part_index']:06d} {meta['label']:<13} bbox={meta['bbox']} "
                              f"severity={meta['severity']:.2f} light={meta['light_gain']:.2f}{events_txt}",
                              highlight=False)
                count += 1
                if seconds and time.monotonic() - start >= seconds:
                    break
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        if log is not None:
            log.close()
    elapsed = time.monotonic() - start
    where = f" to {out}" if out is not None else ""
    err_console.print(f"{count} frames{where} in {elapsed:.1f} s ({count / max(elapsed, 1e-9):.1f} fps)",
                      highlight=False)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
