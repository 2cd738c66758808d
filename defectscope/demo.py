"""The demo, the README's first command: a trained model serving a simulated line.

It composes the packages the way a plant would: dataset tools make a labelled set from the
camera simulator, training turns it into a bundle, the service loads the bundle, and a
simulated camera station posts every part to it over HTTP.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from inspection.atomic import atomic_dir
from inspection.bundle import load_bundle
from inspection.errors import BundleError


@dataclass(frozen=True)
class DemoConfig:
    model: Path = Path("models/demo")
    data: Path = Path("data/demo")
    runs: Path = Path("runs/demo")
    n_images: int = 2000  # ~45 s to simulate on 2 cores; 30 epochs then reach >= 99 % (BENCHMARKS.md)
    image_size: tuple[int, int] = (1024, 1280)  # (h, w): a 1.3-megapixel area-scan camera
    epochs: int = 30  # about 4 min on 2 idle cores
    train_minutes: float = 10.0  # a safety net on a slow machine; the best epoch so far is kept
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 8000
    rate: float = 4.0  # parts per second from the simulated station
    seconds: float | None = None  # stop by itself after this long (None: until Ctrl-C)
    # the simulated line's scheduled fault (datasets.simulator.parse_event syntax; None: a clean line)
    fault: str | None = "tool_fault@400:defect=scratch,rate=0.5"
    defect_rate: float = 0.05  # background defects of the simulated line
    spc_baseline: int = 200  # parts that set the control limits (shorter than a plant's 500, for a demo)
    spc_window: int = 25


def has_bundle(path: Path) -> bool:
    try:
        load_bundle(path)
    except BundleError:
        return False
    return True


def ensure_model(cfg: DemoConfig, say=print) -> Path:
    """The demo bundle, simulating a dataset and training it on first use."""
    if has_bundle(cfg.model):
        say(f"using the model in {cfg.model} (delete it to retrain)")
        return cfg.model
    from datasets.layout import MANIFEST
    from datasets.synth import synthesize
    from training import TrainConfig, train

    if not (cfg.data / MANIFEST).is_file():
        say(f"no model yet: simulating {cfg.n_images} camera frames into {cfg.data} ...")
        synthesize(cfg.data, n=cfg.n_images, seed=cfg.seed, size=cfg.image_size, progress=True)
    say(f"training a model on {cfg.data} ({cfg.epochs} epochs, at most {cfg.train_minutes:g} min) ...")
    result = train(
        TrainConfig(data=str(cfg.data), out=str(cfg.runs), name="demo", seed=cfg.seed, epochs=cfg.epochs,
                    time_limit_min=cfg.train_minutes),
        progress=True,
    )
    with atomic_dir(cfg.model) as tmp:  # the service never sees a half-copied bundle
        shutil.copytree(result.bundle_path, tmp, dirs_exist_ok=True)
    acc = (result.test_metrics or result.val_metrics).get("accuracy")
    say(f"model ready in {cfg.model}" + (f": test accuracy {acc:.1%}" if acc is not None else ""))
    return cfg.model


def run_demo(cfg: DemoConfig, model: Path, stop: threading.Event, on_part, say=print):
    """Serve ``model`` and feed it the simulated line until ``stop`` is set or time is up.

    Returns the station's summary. Authentication is off: the service listens on
    ``cfg.host`` only, which is the loopback address by default.
    """
    from datasets.simulator import parse_event
    from datasets.simulator.sources import open_source
    from serving.config import load_settings
    from serving.server import start_in_background
    from serving.station import StationConfig, run_station

    events = [parse_event(cfg.fault)] if cfg.fault else []
    settings = load_settings(
        model=model, host=cfg.host, port=cfg.port, auth_disabled=True,
        verdict_db=cfg.runs.parent / "demo-verdicts.sqlite", keep_images_dir=cfg.runs.parent / "demo-images",
        spc_baseline=cfg.spc_baseline, spc_window=cfg.spc_window,
    )
    with start_in_background(settings) as server:
        say(f"service up on {server.url}  (API docs {server.url}/docs, metrics {server.url}/metrics)")
        say(f"[bold]QA page: {server.url}/ui[/]  (live line, alarms, review, upload)")
        say(f"try it:  curl -s -H 'Content-Type: image/jpeg' --data-binary @IMAGE.jpg {server.url}/v1/inspect")
        if events:
            say(f"the simulated line has a scheduled fault: {cfg.fault} (control limits from the first "
                f"{cfg.spc_baseline} parts)")
        done = threading.Event()
        watcher = threading.Thread(target=watch_alarms, args=(server.url, done, say), daemon=True)
        watcher.start()
        station = StationConfig(api=server.url, station_id="demo-station", duration=cfg.seconds, unsent_path=None)
        try:
            with open_source("sim", rate=cfg.rate, seed=cfg.seed + 1, events=events,
                             defect_rate=cfg.defect_rate) as frames:
                return run_station(frames, station, on_result=on_part, stop=stop)
        finally:
            done.set()
            watcher.join(10)


def watch_alarms(url: str, stop: threading.Event, say=print, every_s: float = 1.0) -> None:
    """Print each alarm raise and clear as the service reports it (GET /v1/alarms)."""
    import httpx

    seen: set[int] = set()
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while not stop.wait(every_s):
            try:
                recent = client.get("/v1/alarms", params={"limit": 20}).json().get("recent", [])
            except (httpx.HTTPError, ValueError):
                continue  # the service is stopping
            for a in reversed(recent):
                if a.get("id") in seen:
                    continue
                seen.add(a.get("id"))
                colour = "bold red" if a["state"] == "raised" else "bold green"
                say(f"[{colour}]ALARM {a['state'].upper()}[/] {a['kind']} at {a['station']} after part "
                    f"{a['part']}: {a['message']}")
