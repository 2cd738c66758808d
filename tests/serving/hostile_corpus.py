"""A generated corpus of hostile requests: broken and lying images in every format, bombs, hostile
JSON and headers, zips, malformed multipart and query strings. Deterministic (seeded).

Each Case is one HTTP request; ``expect_ok`` marks the few that are valid controls. The service
must answer every one below 500 and log every verdict it answers.
"""

from __future__ import annotations

import bz2
import io
import json
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from tests.hostile_images import cmyk_jpeg, lying_files, multi_frame_files
from tests.support import encode, png_bomb


@dataclass
class Case:
    name: str
    method: str = "POST"
    path: str = "/v1/inspect"
    body: bytes | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    key: str = "station"  # station, engineer, none
    expect_ok: bool = False


def _bases(rng: np.random.Generator) -> dict[str, bytes]:
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    bgra = np.dstack([img, np.full(img.shape[:2], 180, np.uint8)])
    out = {f"{ext[1:]}": encode(img, ext) for ext in (".jpg", ".png", ".bmp", ".tiff", ".webp", ".gif")}
    out.update({"progressive jpg": encode(img, ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                "gray png": encode(gray), "16-bit png": encode(gray.astype(np.uint16) * 257),
                "16-bit tiff": encode((img.astype(np.uint16) * 257), ".tiff"), "alpha png": encode(bgra),
                "alpha webp": encode(bgra, ".webp"), "alpha tiff": encode(bgra, ".tiff"), "cmyk jpg": cmyk_jpeg()})
    out.update({name: data for name, (data, _) in multi_frame_files().items()})
    return out


def _image_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    bases = _bases(rng)
    for name, data in bases.items():
        cases.append(Case(f"valid {name}", body=data, headers={"Content-Type": "application/octet-stream"},
                          expect_ok=True))
        for frac in (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
            cut = max(1, int(len(data) * frac))
            cases.append(Case(f"{name} truncated at {frac:.0%}", body=data[:cut],
                              headers={"Content-Type": "image/jpeg"}))
        for seed in range(24):  # bytes flipped in the header and in the data
            r = np.random.default_rng(seed)
            b = bytearray(data)
            span = min(len(b), 64 if seed % 2 else len(b))
            for pos in r.integers(0, span, size=1 + seed % 6):
                b[int(pos)] = int(r.integers(0, 256))
            cases.append(Case(f"{name} flipped bytes {seed}", body=bytes(b), headers={"Content-Type": "image/png"}))
    for name, data in lying_files(rng).items():
        cases.append(Case(f"lie: {name}", body=data, headers={"Content-Type": "image/tiff"}))
    for w, h in ((30000, 30000), (65535, 1), (1, 65535), (8001, 8001), (2**31 - 1, 2), (0, 10)):
        cases.append(Case(f"png bomb {w}x{h}", body=png_bomb(w, h), headers={"Content-Type": "image/png"}))
    png = bases["png"]
    for w, h in ((0, 0), (1, 1), (53, 1), (1, 37), (5300, 3700), (0xFFFFFFFF, 0xFFFFFFFF)):
        b = png[:16] + struct.pack(">II", w, h) + png[24:]  # size lies (CRC now wrong too)
        cases.append(Case(f"png size lie {w}x{h}", body=b, headers={"Content-Type": "image/png"}))
    jpg = bases["jpg"]
    sof = jpg.find(b"\xff\xc0")
    for w, h in ((0, 0), (1, 1), (65535, 65535), (530, 370), (53, 0)):
        b = jpg[: sof + 5] + struct.pack(">HH", h, w) + jpg[sof + 9 :]
        cases.append(Case(f"jpeg size lie {w}x{h}", body=b, headers={"Content-Type": "image/jpeg"}))
    gif = bases["gif"]
    for w, h in ((0, 0), (1, 1), (65535, 65535), (9000, 9000)):
        cases.append(Case(f"gif screen lie {w}x{h}", body=gif[:6] + struct.pack("<HH", w, h) + gif[10:],
                          headers={"Content-Type": "image/gif"}))
    bmp = bases["bmp"]
    for w, h in ((0, 0), (-53, -37), (60000, 60000), (53, -37), (2**31 - 1, 1)):
        cases.append(Case(f"bmp size lie {w}x{h}", body=bmp[:18] + struct.pack("<ii", w, h) + bmp[26:],
                          headers={"Content-Type": "image/bmp"}))
    magics = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*", b"II+\x00", b"RIFF\0\0\0\0WEBP",
              b"GIF89a", b"GIF87a", b"RIFF\xff\xff\xff\xffWEBPVP8X"]
    for m in magics:
        for n in (0, 1, 8, 30, 200, 5000):
            cases.append(Case(f"magic {m[:4]!r} + {n} random bytes", body=m + rng.bytes(n),
                              headers={"Content-Type": "image/jpeg"}))
    for n in (1, 2, 10, 100, 10_000, 200_000):
        cases.append(Case(f"random {n} bytes", body=rng.bytes(n), headers={"Content-Type": "image/jpeg"}))
    cases.append(Case("empty body", body=b"", headers={"Content-Type": "image/jpeg"}))
    cases.append(Case("svg", body=b"<svg xmlns='http://www.w3.org/2000/svg'/>", headers={"Content-Type": "image/png"}))
    return cases


def _header_cases(valid: bytes) -> list[Case]:
    img = {"Content-Type": "image/jpeg"}
    cases = []
    for ctype in ("text/plain", "", "application/json", "multipart/form-data", "multipart/form-data; boundary=",
                  "image/svg+xml", "image/jpeg; charset=\x7f", "x" * 2000, "application/x-www-form-urlencoded",
                  "image/*", "IMAGE/JPEG", "image/jpeg, image/png", "video/mp4", "application/zip"):
        cases.append(Case(f"content type {ctype[:30]!r}", body=valid, headers={"Content-Type": ctype}))
    for depth in (2, 3, 4, 5, 6, 10, 50, 100, 299, 300, 301, 600, 1000, 2000, 3000):
        raw = '{"a":' * depth + "1" + "}" * depth
        cases.append(Case(f"metadata object nested {depth}", body=valid, headers={**img, "X-Metadata": raw[:8000]}))
        raw = "[" * depth + "]" * depth
        cases.append(Case(f"metadata array nested {depth}", body=valid,
                          headers={**img, "X-Metadata": '{"a":' + raw[:7000] + "}"}))
    for raw in ('{"a": NaN}', '{"a": -Infinity}', '{"a": 1e400}', '{"a": 12345678901234567890123}', "[]", "null",
                "1", '"x"', "{", '{"a":1}garbage', json.dumps({f"k{i}": i for i in range(200)}),
                json.dumps({"a": "x" * 3000}), '{"\\u0000": 1}', '{"a": "\\ud800"}', "{" + '"a":1,' * 500 + '"b":2}'):
        cases.append(Case(f"metadata {raw[:30]!r}", body=valid, headers={**img, "X-Metadata": raw}))
    cases.append(Case("metadata as query, nested 2000", path="/v1/inspect?metadata=" + "%5B" * 2000 + "%5D" * 2000,
                      body=valid, headers=img))
    for sid in ("\x01ctrl", "a" * 129, "é" * 128, " ", "line\nbreak", "<script>", "a|b", "../../etc"):
        cases.append(Case(f"station id {sid[:12]!r}", body=valid,
                          headers={**img, "X-Station-Id": sid.encode("utf-8").decode("latin-1")}))
        cases.append(Case(f"part id {sid[:12]!r}", body=valid,
                          headers={**img, "X-Part-Id": sid.encode("utf-8").decode("latin-1")}))
    cases.append(Case("huge header", body=valid, headers={**img, "X-Filler": "x" * 20_000}))
    cases.append(Case("many headers", body=valid, headers={**img, **{f"X-H{i}": "y" * 100 for i in range(150)}}))
    cases.append(Case("no key", body=valid, headers=img, key="none"))
    cases.append(Case("bad key", body=valid, headers={**img, "X-API-Key": "x" * 40}, key="none"))
    cases.append(Case("key too long", body=valid, headers={**img, "X-API-Key": "k" * 10_000}, key="none"))
    cases.append(Case("bearer without token", body=valid, headers={**img, "Authorization": "Bearer "}, key="none"))
    return cases


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _zip_cases(valid: bytes, rng: np.random.Generator) -> list[Case]:
    def upload(name: str, *zips: tuple[str, bytes]) -> Case:
        return Case(name, path="/v1/review/upload",
                    files=[("files", (fn, data, "application/zip")) for fn, data in zips])

    bomb_bz2 = _zip({"a.png": b"\0" * (50 << 20)}, zipfile.ZIP_BZIP2)
    bomb_deflate = _zip({f"b{i}.jpg": b"\0" * (30 << 20) for i in range(3)})
    cases = [
        upload("eight bzip2 bombs in one request", *[(f"z{i}.zip", bomb_bz2) for i in range(8)]),
        upload("deflate bomb", ("d.zip", bomb_deflate)),
        upload("40000 non-image entries", ("many.zip", _zip({f"n{i}.txt": b"" for i in range(40_000)},
                                                             zipfile.ZIP_STORED))),
        upload("not a zip named .zip", ("x.zip", b"PK\x03\x04 not really a zip")),
        upload("empty zip", ("e.zip", _zip({}))),
        upload("zip of traversal names", ("t.zip", _zip({"../../etc/passwd.png": valid, "/abs.jpg": valid,
                                                         "C:\\win.jpg": valid}))),
        upload("nested zip", ("n.zip", _zip({"inner.zip": _zip({"a.jpg": valid})}))),
        upload("zip with images", ("ok.zip", _zip({"a.jpg": valid, "b.jpg": valid}))),
    ]
    lz = bytearray(_zip({"l.jpg": valid * 3}, zipfile.ZIP_LZMA))
    hdr = lz.find(b"PK\x03\x04")
    for k in range(40, 60):  # corrupt the LZMA stream
        lz[hdr + k] ^= 0xFF
    cases.append(upload("corrupt lzma member", ("lz.zip", bytes(lz))))
    enc = bytearray(_zip({"s.jpg": valid}))
    enc[6] |= 1  # "encrypted" flag in the local header
    cd = enc.find(b"PK\x01\x02")
    enc[cd + 8] |= 1
    cases.append(upload("encrypted member", ("enc.zip", bytes(enc))))
    good = _zip({"a.jpg": valid, "b.png": valid})
    for seed in range(30):
        b = bytearray(good)
        r = np.random.default_rng(100 + seed)
        for pos in r.integers(0, len(b), size=1 + seed % 8):
            b[int(pos)] = int(r.integers(0, 256))
        cases.append(upload(f"zip flipped bytes {seed}", ("f.zip", bytes(b))))
    for cut in (10, 30, 100, len(good) // 2, len(good) - 10):
        cases.append(upload(f"zip truncated at {cut}", ("c.zip", good[:cut])))
    cases.append(Case("review upload not multipart", path="/v1/review/upload", body=good,
                      headers={"Content-Type": "application/zip"}))
    cases.append(upload("bz2 member that lies about its size",
                        ("lie.zip", _zip({"x.png": bz2.compress(b"\0" * 100)}, zipfile.ZIP_BZIP2))))
    return cases


def _multipart_cases(valid: bytes) -> list[Case]:
    cases = []
    for name, body, ctype in [
        ("no boundary", b"--x\r\n\r\n", "multipart/form-data"),
        ("truncated", b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\n" + valid[:50],
         "multipart/form-data; boundary=x"),
        ("garbage", b"\x00" * 500, "multipart/form-data; boundary=x"),
        ("no parts", b"--x--\r\n", "multipart/form-data; boundary=x"),
        ("huge part header",
         b"--x\r\nContent-Disposition: form-data; name=\"" + b"n" * 100_000 + b"\"\r\n\r\nv\r\n--x--",
         "multipart/form-data; boundary=x"),
        ("boundary 200 chars", b"--" + b"b" * 200 + b"--", "multipart/form-data; boundary=" + "b" * 200),
    ]:
        for path in ("/v1/inspect", "/v1/inspect/batch", "/v1/review/upload"):
            cases.append(Case(f"multipart {name} to {path}", path=path, body=body, headers={"Content-Type": ctype}))
    cases.append(Case("batch of 100 parts (over the item limit)", path="/v1/inspect/batch",
                      files=[("files", (f"{i}.jpg", valid, "image/jpeg")) for i in range(100)]))
    cases.append(Case("batch with non-printable file names", path="/v1/inspect/batch",
                      files=[("files", ("\x01\x02evil\x7f.jpg", valid, "image/jpeg")),
                             ("files", ("n" * 500 + ".jpg", valid, "image/jpeg"))]))
    cases.append(Case("batch with a text part", path="/v1/inspect/batch",
                      files=[("files", ("a.txt", b"hello", "text/plain")), ("files", ("b.jpg", valid, "image/jpeg"))]))
    cases.append(Case("inspect multipart without file field", files=[("other", ("a.jpg", valid, "image/jpeg"))]))
    return cases


def _json_cases() -> list[Case]:
    cases = []
    bodies: list[tuple[str, bytes]] = [
        ("garbage", b"{not json"), ("array", b"[]"), ("null", b"null"), ("number", b"42"),
        ("deep", b'{"a":' * 5000 + b"1" + b"}" * 5000), ("100 KB", json.dumps({"version": "x" * 100_000}).encode()),
        ("wrong types", b'{"version": 5, "force": "yes"}'), ("unknown version", b'{"version": "nope"}'),
        ("bad version name", b'{"version": "../../etc"}'), ("utf-16", '{"version": "a"}'.encode("utf-16")),
    ]
    for name, body in bodies:
        for key in ("engineer", "station", "none"):
            cases.append(Case(f"reload {name} as {key}", path="/v1/model/reload", body=body,
                              headers={"Content-Type": "application/json"}, key=key))
    labels: list[tuple[str, bytes]] = [
        ("newline label", b'{"label": "good\\n"}'), ("traversal label", b'{"label": "../x"}'),
        ("long note", json.dumps({"label": "good", "note": "n" * 5000}).encode()), ("deep", b"[" * 3000),
        ("missing label", b"{}"), ("label number", b'{"label": 7}'),
    ]
    for name, body in labels:
        for vid in ("1", "0", "-1", str(2**62), str(2**63), "abc"):
            cases.append(Case(f"label {name} on verdict {vid}", path=f"/v1/verdicts/{vid}/label", body=body,
                              headers={"Content-Type": "application/json"}, key="engineer"))
    cases.append(Case("64 MB reload body without a key", path="/v1/model/reload", body=b"{" + b" " * 100,
                      headers={"Content-Type": "application/json", "Content-Length": str(64 << 20)}, key="none"))
    return cases


def _query_cases() -> list[Case]:
    cases = []
    for q in ("offset=9223372036854775808", "offset=-1", "limit=0", "limit=100000", "since=nan", "since=inf",
              "until=-inf", "since=1e308", "station=" + "s" * 500, "verdict=maybe", "limit=1e3", "offset=1.5",
              "since=%00", "station=%00%01", "limit=" + "9" * 400):
        cases.append(Case(f"verdicts ?{q[:30]}", method="GET", path=f"/v1/verdicts?{q}", key="engineer"))
    for q in ("limit=0", "limit=100000", "limit=x"):
        cases.append(Case(f"alarms ?{q}", method="GET", path=f"/v1/alarms?{q}"))
    cases.append(Case("monitor long station", method="GET", path="/v1/monitor?station=" + "s" * 1000))
    for vid in ("0", "-5", str(2**63), "x", "1" * 300):
        cases.append(Case(f"review image {vid[:10]}", method="GET", path=f"/v1/review/verdicts/{vid}/image",
                          key="engineer"))
        cases.append(Case(f"review heatmap {vid[:10]}", method="GET", path=f"/v1/review/verdicts/{vid}/heatmap",
                          key="engineer"))
    for path in ("/ui/static/..%2F..%2Fconfig.py", "/ui/static/" + "a" * 5000, "/%00", "/v1/" + "x/" * 2000,
                 "/docs", "/redoc", "/openapi.json", "/metrics", "/readyz"):
        cases.append(Case(f"GET {path[:40]}", method="GET", path=path, key="none"))
    cases.append(Case("explain=maybe", path="/v1/inspect?explain=maybe", body=b"",
                      headers={"Content-Type": "image/png"}))
    return cases


def corpus(seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    valid = _bases(rng)["jpg"]
    return [*_image_cases(rng), *_header_cases(valid), *_zip_cases(valid, rng), *_multipart_cases(valid),
            *_json_cases(), *_query_cases()]


def verdict_ids(path: str, body: Any) -> list[str]:
    """The request ids of every verdict a 200 answer carries (one, or one per batch/upload item)."""
    if not isinstance(body, dict):
        return []
    if "request_id" in body:
        return [body["request_id"]]
    return [it["result"]["request_id"] for it in body.get("items", []) if it.get("result")]
