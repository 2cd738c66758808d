"""Service settings: environment (``DEFECTSCOPE_*``), an optional dotenv-style file, then overrides.

Read when ``load_settings`` is called, never at import time. Insecure setups are refused
unless auth is switched off on purpose (``DEFECTSCOPE_AUTH_DISABLED=1``, for local demos).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from inspection.errors import DefectscopeError
from inspection.limits import opencv_limit
from serving.sql import POSTGRES_URL, Database, database

MIN_KEY_LENGTH = 16
# Placeholders copied from docs are the most common leaked "secret".
_PLACEHOLDER_KEYS = {"changethis", "changeme", "secret", "password", "station", "engineer"}
KEEP_CHOICES = ("fail", "review", "pass", "invalid")


class SettingsError(DefectscopeError):
    """The service settings are missing something or are unsafe."""


# A station key may be bound to the station ids it may post as: "line3-cam1|line3-cam2:KEY".
STATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_BOUND_KEY = re.compile(r"((?:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:\|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})*):(.+)", re.S)


def parse_key_entry(entry: str) -> tuple[str, frozenset[str] | None]:
    """(key, the station ids it is bound to, or None: any id) from one configured key entry."""
    m = _BOUND_KEY.fullmatch(entry)
    if m is None:
        return entry, None
    return m.group(2), frozenset(m.group(1).split("|"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Keys = Annotated[list[SecretStr], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEFECTSCOPE_", extra="ignore", frozen=True)

    # model and runtime
    model: Path | None = Field(None, description="Model bundle folder to serve.")
    backend: str = Field("auto", pattern=r"^(auto|onnx|onnx-int8|openvino|torch)$",
                         description="auto (the fastest `defectscope export` measured here, else ONNX Runtime), "
                         "onnx, onnx-int8, openvino or torch.")
    threads: int | None = Field(None, ge=1, description="Inference threads (default: planned for this machine and "
                                "model, inspection/thread_layout.py).")
    frame_size: str = Field("1280x1024", pattern=r"^[1-9][0-9]{0,5}x[1-9][0-9]{0,5}$",
                            description="The camera's frame, WIDTHxHEIGHT: the thread plan measures decoding one.")
    # network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="Processes; each loads the model and batches on its own.")
    # micro-batching and load shedding
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_wait_ms: float = Field(2.0, ge=0.0, le=1000.0, description="How long the first image waits for company.")
    max_queue: int = Field(32, ge=1, description="Images admitted at once; past it the answer is 503.")
    decode_threads: int | None = Field(None, ge=1, description="Threads decoding and preprocessing uploads "
                                       "(default: one per core).")
    retry_after_s: int = Field(1, ge=1, description="Retry-After seconds sent with a 503.")
    # input limits
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(32, ge=1)
    max_batch_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Whole /v1/inspect/batch body.")
    max_pixels: int = Field(64_000_000, ge=1)
    max_json_bytes: int = Field(64 * 1024, ge=1024, description="Any other request body (JSON).")
    # slow and greedy clients
    header_timeout_s: float = Field(10.0, gt=0, le=300, description="Time a client has to send a request's "
                                    "headers; then the connection is closed.")
    body_timeout_s: float = Field(30.0, gt=0, le=3600, description="Time a client has to send a request's body "
                                  "(408 after it).")
    http_parser: Literal["auto", "httptools", "h11"] = Field("auto", description="HTTP parser: httptools (C) "
                                                            "when installed, else h11.")
    max_connections: int = Field(256, ge=4, description="Open connections and requests at once; past it 503.")
    max_requests_per_client: int = Field(16, ge=1, description="Requests at once per API key (per address with "
                                         "--no-auth); past it 429.")
    max_buffered_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024, description="Request bodies held in memory "
                                    "at once, all clients together; past it 503.")
    max_stations: int = Field(256, ge=1, description="Distinct station ids; an unknown id past it is refused.")
    max_explain_pending: int = Field(4, ge=1, description="Heatmap requests queued at once; past it 503.")
    explain_side: int = Field(640, ge=64, le=4096, description="Longer side of heatmap overlays, in pixels.")
    # verdict log
    verdict_db: Path | None = Field(Path("defectscope-verdicts.sqlite"),
                                    description="SQLite verdict log; empty switches it off.")
    keep_images_dir: Path | None = Field(None, description="Keep the images of these verdicts here for QA.")
    keep_images_for: Annotated[tuple[str, ...], NoDecode] = ("fail", "review", "invalid")
    verdict_log_max_backlog: int = Field(50_000, ge=100, description="Verdicts waiting for the database; past it "
                                         "503 (a verdict that cannot be logged is not answered).")
    keep_images_max_pending_mb: int = Field(256, ge=1, description="Kept images waiting for the disk; past it a "
                                            "verdict is logged without its image.")
    verdict_spill_dir: Path | None = Field(None, description="Where verdicts go while the database refuses writes; "
                                           "default: next to the verdict log (the working folder with a server).")
    database_url: SecretStr | None = Field(None, description="postgresql://USER:PASS@HOST:5432/DB: the verdict log, "
                                           "alarms and samples index on this PostgreSQL server, shared by several "
                                           "instances (instead of the SQLite files).")
    shutdown_timeout_s: float = Field(20.0, gt=0, le=600, description="Longest a stop may take; what the verdict "
                                      "log has not stored by then goes to its spill file.")
    # auth
    auth_disabled: bool = False
    station_keys: Keys = Field(default_factory=list, description="Comma-separated keys that may inspect.")
    engineer_keys: Keys = Field(default_factory=list, description="Comma-separated keys that may do everything.")
    # model registry and sample intake (issue 7)
    registry: Path | None = Field(None, description="Model registry folder; its champion for `line` is served.")
    line: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                      description="Line or product whose champion this service runs.")
    registry_watch_s: float | None = Field(None, gt=0, description="Poll the registry this often and load a "
                                           "new champion by itself; unset: only POST /v1/model/reload.")
    samples_dir: Path | None = Field(None, description="Dataset folder new labelled samples go to; "
                                     "default: defectscope-samples next to the verdict log.")
    # line monitoring (issue 8): SPC alarms per station and model version
    alarm_db: Path | None = Field(None, description="SQLite alarm log; default: defectscope-alarms.sqlite next to "
                                  "the verdict log (none when the verdict log is off).")
    alarm_webhook: str | None = Field(None, pattern=r"^https?://\S+$",
                                      description="POST each alarm raise/clear as JSON to this URL.")
    alarm_webhook_timeout_s: float = Field(3.0, gt=0, le=60)
    spc_baseline: int = Field(500, ge=20, description="Parts per station whose fail rate sets the control limits.")
    spc_window: int = Field(50, ge=5, description="Parts per p-chart point.")
    spc_false_alarms_per_10k: float = Field(1.0, gt=0, le=1000, description="Fault-free alarms the limits allow "
                                            "per 10,000 parts.")
    # the plant network (issue 19)
    mqtt_url: str | None = Field(None, pattern=r"^mqtts?://\S+$", description="Publish verdicts and alarms to "
                                 "this MQTT broker (mqtt://HOST:1883, mqtts://USER:PASS@HOST:8883), QoS 1.")
    mqtt_topic_prefix: str = Field("defectscope/v1", pattern=r"^[^+#\s]{1,128}$",
                                   description="Topics: PREFIX/LINE/STATION/verdict and .../alarm.")
    mqtt_outbox: int = Field(10_000, ge=10, description="MQTT messages waiting for the broker at most; past it "
                             "new ones are dropped and counted (defectscope_mqtt_dropped_total).")
    process_analysis_every_s: float = Field(600.0, ge=10, description="How old the QA page's process drivers per "
                                            "station may get before a background refresh (while the page is open).")
    # lifecycle
    stop_after_s: float | None = Field(None, gt=0, description="Stop by itself after this many seconds (CI).")

    @field_validator("verdict_db", "keep_images_dir", "model", "registry", "samples_dir", "alarm_db", "alarm_webhook",
                     "verdict_spill_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v  # DEFECTSCOPE_VERDICT_DB= switches the log off

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_only(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            return None
        text = v.get_secret_value() if isinstance(v, SecretStr) else v
        if isinstance(text, str) and not POSTGRES_URL.match(text):
            raise ValueError("database_url takes a postgresql://USER:PASS@HOST:PORT/DB URL "
                             "(the SQLite files are set with verdict_db and alarm_db)")
        return v

    def database(self, sqlite_path: Path | None) -> Database | None:
        """The shared server when one is set, else the SQLite file (None: that log is off)."""
        if self.database_url is not None:
            return database(self.database_url.get_secret_value())
        return database(sqlite_path) if sqlite_path is not None else None

    @field_validator("station_keys", "engineer_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: Any) -> Any:
        return [k.strip() for k in v.split(",") if k.strip()] if isinstance(v, str) else v

    @field_validator("keep_images_for", mode="before")
    @classmethod
    def _split_keep(cls, v: Any) -> Any:
        items = [k.strip().lower() for k in v.split(",") if k.strip()] if isinstance(v, str) else list(v)
        bad = [k for k in items if k not in KEEP_CHOICES]
        if bad:
            raise ValueError(f"keep_images_for takes {', '.join(KEEP_CHOICES)}, not {bad}")
        return tuple(items)

    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if self.max_pixels > opencv_limit():
            raise ValueError(f"max_pixels {self.max_pixels:,} is above OpenCV's own decoder limit "
                             f"({opencv_limit():,}): set OPENCV_IO_MAX_IMAGE_PIXELS to at least as much too")
        if self.auth_disabled:
            if not is_loopback(self.host):
                raise ValueError(f"authentication can only be switched off on a loopback address, not {self.host}: "
                                 "configure API keys to listen on the network")
            return self
        # only station keys carry station bindings; an engineer key is taken whole
        keys = [parse_key_entry(k.get_secret_value())[0] for k in self.station_keys]
        keys += [k.get_secret_value() for k in self.engineer_keys]
        if not keys:
            raise ValueError(
                "no API keys configured: set DEFECTSCOPE_STATION_KEYS and DEFECTSCOPE_ENGINEER_KEYS "
                "(comma-separated, at least 16 characters each), or set DEFECTSCOPE_AUTH_DISABLED=1 "
                "for a local demo"
            )
        for k in keys:
            if len(k) < MIN_KEY_LENGTH or k.lower() in _PLACEHOLDER_KEYS:
                raise ValueError(
                    f"an API key is too short or a placeholder: use at least {MIN_KEY_LENGTH} random "
                    "characters (python -c 'import secrets; print(secrets.token_urlsafe(24))')"
                )
        if len(set(keys)) != len(keys):
            raise ValueError("the same API key is listed twice (or as both station and engineer key)")
        return self


def load_settings(settings_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from non-None ``overrides`` (the CLI), else the environment, else ``settings_file``.

    ``settings_file`` holds dotenv lines ``DEFECTSCOPE_X=...``; the environment wins over it.

    Raises SettingsError with pydantic's reasons in one readable message.
    """
    if settings_file is not None and not Path(settings_file).is_file():
        raise SettingsError(f"settings file {settings_file} does not exist")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(_env_file=settings_file, **given)  # type: ignore[call-arg]
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SettingsError(f"invalid service settings: {reasons}") from None
