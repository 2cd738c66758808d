"""API keys and roles; settings from the environment and a file; insecure setups refused."""

from __future__ import annotations

import logging

import pytest

from serving.auth import KeyRing, Role
from serving.config import SettingsError, load_settings
from tests.serving.conftest import ENGINEER_KEY, STATION_KEY, jpeg

IMG = {"Content-Type": "image/jpeg"}


def test_roles(make_client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with make_client(auth_disabled=False, station_keys=STATION_KEY, engineer_keys=ENGINEER_KEY) as client:
        r = client.post("/v1/inspect", content=jpeg(1), headers=IMG)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated")
        r = client.post("/v1/inspect", content=jpeg(1), headers={**IMG, "X-API-Key": STATION_KEY + "x"})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")
        assert client.post("/v1/inspect", content=jpeg(1), headers={**IMG, "X-API-Key": STATION_KEY}).status_code == 200
        assert client.post("/v1/inspect", content=jpeg(1),
                           headers={**IMG, "Authorization": f"Bearer {ENGINEER_KEY}"}).status_code == 200
        r = client.get("/v1/verdicts", headers={"X-API-Key": STATION_KEY})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
        assert client.get("/v1/verdicts", headers={"X-API-Key": ENGINEER_KEY}).status_code == 200
        assert client.get("/v1/model").status_code == 401
        assert client.get("/v1/model", headers={"X-API-Key": STATION_KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no key
        # auth is checked before the body is looked at: an anonymous bad upload is 401, not 415
        assert client.post("/v1/inspect", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 401
    assert STATION_KEY not in caplog.text and ENGINEER_KEY not in caplog.text


def test_keys_never_show_in_reprs() -> None:
    s = load_settings(station_keys=STATION_KEY, engineer_keys=ENGINEER_KEY, verdict_db=None)
    assert STATION_KEY not in repr(s) and STATION_KEY not in str(KeyRing(s))
    ring = KeyRing(s)
    assert ring.role_of(STATION_KEY) is Role.STATION and ring.role_of(ENGINEER_KEY) is Role.ENGINEER
    assert ring.role_of("") is None and ring.role_of(STATION_KEY[:-1]) is None


@pytest.mark.parametrize("overrides, fragment", [
    ({}, "no API keys configured"),
    ({"station_keys": "short"}, "too short"),
    ({"station_keys": STATION_KEY, "engineer_keys": STATION_KEY}, "listed twice"),
    ({"auth_disabled": True, "max_batch_size": 0}, "max_batch_size"),
    ({"auth_disabled": True, "keep_images_for": "pass,maybe"}, "keep_images_for"),
])
def test_insecure_or_invalid_settings_are_refused(overrides, fragment) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**overrides)


def test_settings_from_environment_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    env_file = tmp_path / "service.env"
    env_file.write_text(f"DEFECTSCOPE_STATION_KEYS={STATION_KEY}\nDEFECTSCOPE_PORT=9001\nDEFECTSCOPE_MAX_QUEUE=5\n")
    monkeypatch.setenv("DEFECTSCOPE_MAX_QUEUE", "7")
    monkeypatch.setenv("DEFECTSCOPE_ENGINEER_KEYS", f"{ENGINEER_KEY}, {ENGINEER_KEY}-2")
    s = load_settings(env_file, port=9100)
    assert s.port == 9100  # an explicit option wins
    assert s.max_queue == 7  # the environment wins over the file
    assert [k.get_secret_value() for k in s.station_keys] == [STATION_KEY]
    assert len(s.engineer_keys) == 2
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.env")


def test_auth_can_be_switched_off_on_loopback_only() -> None:
    assert load_settings(auth_disabled=True, host="127.0.0.1").auth_disabled
    assert load_settings(auth_disabled=True, host="::1").auth_disabled
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(SettingsError, match="loopback"):
            load_settings(auth_disabled=True, host=host)


def test_station_keys_can_be_bound_to_station_ids() -> None:
    s = load_settings(station_keys=f"line3-cam1|line3-cam2:{STATION_KEY},{STATION_KEY}-free",
                      engineer_keys=ENGINEER_KEY)
    ring = KeyRing(s)
    bound, free = ring.identify(STATION_KEY), ring.identify(f"{STATION_KEY}-free")
    assert bound is not None and bound.stations == frozenset({"line3-cam1", "line3-cam2"})
    assert free is not None and free.stations is None and free.client != bound.client
    assert ring.identify(f"line3-cam1|line3-cam2:{STATION_KEY}") is None  # the binding is no part of the key
    with pytest.raises(SettingsError, match="too short"):
        load_settings(station_keys="cam1:short", engineer_keys=ENGINEER_KEY)
