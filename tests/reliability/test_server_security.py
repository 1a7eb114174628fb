"""The annotation server (``privlab semsim annotate``) against hostile requests: it binds to 127.0.0.1 by default,
serves only the images of its queue (no ``..``, no encoded ``%2e%2e``, no absolute path, no symbolic link out of its
folder — not even one swapped in while it runs), answers every malformed request with a 4xx (never a 500, never a
dropped connection), keeps serving afterwards, and loses no answer when many arrive at once.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from privlab.data.reconstructions import save_pairs
from privlab.errors import ConfigError
from privlab.measure.semsim import load_manifest
from privlab.measure.semsim import server as server_mod
from privlab.measure.semsim.server import make_server

SECRET = b"top secret, outside the served folder"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    g = torch.Generator().manual_seed(0)
    save_pairs(root / "dlg", torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 1, 8, 8, generator=g), [1, 2, 3, 4])
    save_pairs(root / "ig", torch.rand(2, 1, 8, 8, generator=g), torch.rand(2, 1, 8, 8, generator=g), [5, 6])
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "notes.txt").write_bytes(SECRET)  # inside the folder but not an image of the queue
    return root


@pytest.fixture
def serve(folder: Path) -> Iterator[Any]:
    servers: list[Any] = []

    def start(**kw: Any) -> Any:
        srv = make_server(folder, port=0, **kw)
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        srv.thread = t
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def request(srv: Any, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            ctype: str | None = "application/json") -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    hdrs = {"Content-Type": ctype} if ctype and body is not None else {}
    hdrs.update(headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def raw(srv: Any, data: bytes, wait: float = 10.0) -> bytes:
    """Send raw bytes, return what the server answers (until it closes)."""
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def alive(srv: Any) -> bool:
    status, body = request(srv, "GET", "/api/next?annotator=probe")
    return status == 200 and json.loads(body)["total"] == 6


def answer(rec: str, who: str, yes: bool = True) -> bytes:
    return json.dumps({"reconstruction": rec, "recognised": yes, "annotator": who}).encode()


# -- binding --------------------------------------------------------------------------------------------------------


def test_binds_to_loopback_by_default(folder):
    srv = make_server(folder, port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()


def test_the_cli_binds_to_loopback_by_default(folder, monkeypatch, cli):
    seen: dict[str, Any] = {}

    class Fake:
        items, manifest, server_address = [1], folder / "annotations.csv", ("127.0.0.1", 8765)

        def serve_forever(self) -> None:
            raise KeyboardInterrupt

        def server_close(self) -> None:
            seen["closed"] = True

    def fake_make_server(root: Any, **kw: Any) -> Fake:
        seen.update(kw)
        return Fake()

    monkeypatch.setattr(server_mod, "make_server", fake_make_server)
    r = cli.invoke("semsim", "annotate", folder)
    assert r.exit_code == 0, r.output
    assert seen["host"] == "127.0.0.1" and seen["closed"]
    assert "http://localhost:8765/" in r.output and "every answer is in the manifest" in r.output
    assert "warning" not in r.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_the_cli_warns_when_bound_beyond_this_machine(folder, monkeypatch, cli, host):
    class Fake:
        items, manifest, server_address = [1], folder / "annotations.csv", (host, 8765)

        def serve_forever(self) -> None:
            raise KeyboardInterrupt

        def server_close(self) -> None:
            pass

    monkeypatch.setattr(server_mod, "make_server", lambda root, **kw: Fake())
    r = cli.invoke("semsim", "annotate", folder, "--host", host)
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.output.splitlines() if x.startswith("warning:")]
    assert host in line and "no authentication" in line


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.5.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host, loopback):
    assert server_mod.is_loopback(host) is loopback


def test_host_header_of_another_site_is_refused(serve):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    srv = serve()
    status, body = request(srv, "GET", "/api/next?annotator=a", headers={"Host": "evil.example:80"})
    assert status == 403 and b"Host header" in body
    assert alive(srv)


# -- files ----------------------------------------------------------------------------------------------------------

TRAVERSALS = [
    "/img?p=../secret.txt",
    "/img?p=%2e%2e/secret.txt",
    "/img?p=%2e%2e%2fsecret.txt",
    "/img?p=%252e%252e%252fsecret.txt",
    "/img?p=dlg/../../secret.txt",
    "/img?p=dlg%2f..%2f..%2fsecret.txt",
    "/img?p=dlg/./0_1_rec.png/../../../secret.txt",
    "/img?p=..%5csecret.txt",
    "/img?p=/etc/passwd",
    "/img?p=%2fetc%2fpasswd",
    "/img?p=" + "%00",
    "/img?p=notes.txt",
    "/img?p=dlg/./0_1_rec.png",
    "/img?p=dlg//0_1_rec.png",
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "//etc/passwd",
    "/dlg/0_1_rec.png",
    "/notes.txt",
    "/annotations.csv",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_reaches_a_file_outside_the_queue(serve, path):
    srv = serve()
    status, body = request(srv, "GET", path)
    assert status in (400, 404), (status, body[:80])
    assert SECRET not in body and b"root:" not in body
    assert alive(srv)


def test_the_queue_images_are_served(serve):
    """Control for the traversal rows: the real images come back."""
    srv = serve()
    status, body = request(srv, "GET", "/img?p=dlg/0_1_rec.png")
    assert status == 200 and body[:4] == b"\x89PNG"
    status, body = request(srv, "GET", "/img?p=dlg%2F0_1_ori.png")
    assert status == 200 and body[:4] == b"\x89PNG"


def test_symbolic_links_out_of_the_folder_are_never_followed(folder, tmp_path, serve):
    outside = tmp_path / "outside"
    save_pairs(outside, torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), [9])
    (folder / "linked").symlink_to(outside, target_is_directory=True)  # a folder link: its pairs are not queued
    (folder / "dlg" / "7_7_rec.png").symlink_to(outside / "0_9_rec.png")  # a file link: not queued
    (folder / "dlg" / "7_7_ori.png").symlink_to(outside / "0_9_ori.png")
    srv = serve()
    assert {it.setting for it in srv.items} == {"dlg", "ig"} and len(srv.items) == 6
    for p in ("linked/0_9_rec.png", "dlg/7_7_rec.png"):
        status, _ = request(srv, "GET", f"/img?p={p}")
        assert status == 404
    # a served image swapped for a link to a secret while the server runs: refused (resolved path leaves the folder)
    target = folder / "dlg" / "0_1_rec.png"
    target.unlink()
    target.symlink_to(tmp_path / "secret.txt")
    status, body = request(srv, "GET", "/img?p=dlg/0_1_rec.png")
    assert status == 404 and SECRET not in body


# -- malformed requests ----------------------------------------------------------------------------------------------

OK_REC = "dlg/0_1_rec.png"
BAD_POSTS = [
    ("empty body", b"", 400),
    ("not JSON", b"{", 400),
    ("a JSON list", b"[]", 400),
    ("JSON null", b"null", 400),
    ("deeply nested JSON", b"[" * 4000, 400),
    ("not UTF-8", b"\xff\xfe\x00", 400),
    ("a missing field", json.dumps({"reconstruction": OK_REC, "recognised": True}).encode(), 400),
    ("an extra field", json.dumps({"reconstruction": OK_REC, "recognised": True, "annotator": "a", "x": 1}).encode(),
     400),
    ("recognised as a string", json.dumps({"reconstruction": OK_REC, "recognised": "yes", "annotator": "a"}).encode(),
     400),
    ("recognised as 1", json.dumps({"reconstruction": OK_REC, "recognised": 1, "annotator": "a"}).encode(), 400),
    ("an unknown reconstruction", answer("dlg/9_9_rec.png", "a"), 400),
    ("a path outside", answer("../secret.txt", "a"), 400),
    ("reconstruction as a list", json.dumps({"reconstruction": [OK_REC], "recognised": True, "annotator": "a"})
     .encode(), 400),
    ("annotator with markup", answer(OK_REC, "<script>"), 400),
    ("annotator too long", answer(OK_REC, "a" * 65), 400),
    ("annotator empty", answer(OK_REC, ""), 400),
    ("annotator with a trailing newline", answer(OK_REC, "ann\n"), 400),
    ("annotator with a tab", answer(OK_REC, "a\tb"), 400),
    ("annotator with a NUL", answer(OK_REC, "a\u0000"), 400),
    ("annotator with a C1 control", answer(OK_REC, "a\u0085"), 400),
    ("annotator as a number", json.dumps({"reconstruction": OK_REC, "recognised": True, "annotator": 7}).encode(),
     400),
    ("body over 4 KiB", b"{" + b" " * 5000 + b"}", 413),
]  # fmt: skip


@pytest.mark.parametrize(("what", "body", "status"), BAD_POSTS, ids=[b[0] for b in BAD_POSTS])
def test_malformed_answers_are_refused(serve, folder, what, body, status):
    srv = serve()
    got, payload = request(srv, "POST", "/api/answer", body=body)
    assert got == status, payload
    error = json.loads(payload)["error"]
    if what.startswith("annotator"):
        assert error.startswith("annotator:"), error  # the answer names the field
    assert not (folder / "annotations.csv").exists()  # nothing was recorded
    assert alive(srv)


BAD_GETS = [
    ("/nope", 404),
    ("/api/next", 400),
    ("/api/next?annotator=a&annotator=b", 400),
    ("/api/next?annotator=a&x=1", 400),
    ("/api/next?" + "&".join(f"k{i}=v" for i in range(20)), 400),
    ("/api/next?annotator=%3Cscript%3E", 400),
    ("/img", 400),
    ("/img?q=x", 400),
    ("/img?p=a&p=b", 400),
    ("/api/answer", 404),
]


@pytest.mark.parametrize(("path", "status"), BAD_GETS)
def test_malformed_queries_are_refused(serve, path, status):
    srv = serve()
    got, payload = request(srv, "GET", path)
    assert got == status, payload
    assert alive(srv)


@pytest.mark.parametrize(
    ("what", "data", "start"),
    [
        ("no Content-Type", b"POST /api/answer HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", b"HTTP/1.0 400"),
        ("text/plain", b"POST /api/answer HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
         b"HTTP/1.0 400"),
        ("no Content-Length", b"POST /api/answer HTTP/1.0\r\nContent-Type: application/json\r\n\r\n{}",
         b"HTTP/1.0 400"),
        ("Content-Length not a number", b"POST /api/answer HTTP/1.0\r\nContent-Type: application/json\r\n"
         b"Content-Length: ten\r\n\r\n{}", b"HTTP/1.0 400"),
        ("negative Content-Length", b"POST /api/answer HTTP/1.0\r\nContent-Type: application/json\r\n"
         b"Content-Length: -5\r\n\r\n{}", b"HTTP/1.0 400"),
        ("huge Content-Length", b"POST /api/answer HTTP/1.0\r\nContent-Type: application/json\r\n"
         b"Content-Length: 99999999999\r\n\r\n{}", b"HTTP/1.0 413"),
        ("body shorter than announced", b"POST /api/answer HTTP/1.0\r\nContent-Type: application/json\r\n"
         b"Content-Length: 100\r\n\r\n{}", b"HTTP/1.0 40"),
        ("garbage request line", b"\x00\x01\x02 garbage\r\n\r\n", b"<!DOCTYPE HTML>"),  # HTTP/0.9-style 400
        ("URL over 64 KiB", b"GET /" + b"a" * 70000 + b" HTTP/1.0\r\n\r\n", b"HTTP/1.0 414"),
        ("unsupported method", b"DELETE / HTTP/1.0\r\n\r\n", b"HTTP/1.0 501"),
        ("too many headers", b"GET / HTTP/1.0\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
         b"HTTP/1.0 431"),
    ],
)  # fmt: skip
def test_malformed_http_is_refused_without_a_crash(serve, monkeypatch, what, data, start):
    srv = serve(request_timeout=1.0)  # the stalled body below gives up after 1 s, not 10
    port = srv.server_address[1]
    data = data.replace(b"HTTP/1.0\r\n", b"HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n" % port, 1)
    if what == "body shorter than announced":  # keep the connection open: the server must time out (408)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(data)
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.0 408"), reply[:60]
    else:
        reply = raw(srv, data)
        assert reply.startswith(start), reply[:80]
    assert b" 500 " not in reply[:20]
    assert alive(srv)


def test_a_body_trickled_byte_by_byte_times_out_in_total(serve, folder):
    """Slowloris: each byte arrives before the socket timeout, but the whole body must arrive within it."""
    srv = serve(request_timeout=1.0)
    port = srv.server_address[1]
    body = answer(OK_REC, "slow")
    head = (b"POST /api/answer HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (port, len(body)))  # fmt: skip
    t0 = time.monotonic()
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        s.settimeout(0.3)
        for byte in body:  # one byte every 0.3 s: the full body would take len(body) * 0.3 ≈ 20 s
            try:
                s.sendall(bytes([byte]))
                reply = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # the server closed the connection after answering
                break
            if reply:
                break
    elapsed = time.monotonic() - t0
    assert reply.startswith(b"HTTP/1.0 408"), reply[:60]
    assert elapsed < 4.0, elapsed
    assert not (folder / "annotations.csv").exists()
    assert alive(srv)


def test_request_timeout_is_validated(folder):
    for bad in (0, -1, float("nan"), True, "10"):
        with pytest.raises(ConfigError, match="request timeout"):
            make_server(folder, port=0, request_timeout=bad)


def test_a_client_that_hangs_up_mid_request_does_not_stop_the_server(serve, capfd):
    srv = serve()
    port = srv.server_address[1]
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /api/answer HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 50\r\n\r\n{\"rec" % port)  # fmt: skip
    time.sleep(0.3)
    assert alive(srv)
    assert "Traceback" not in capfd.readouterr().err


# -- concurrency ------------------------------------------------------------------------------------------------------


def test_concurrent_answers_all_land_in_the_manifest(serve, folder):
    """4 annotators answer all 6 pairs from 24 threads at once, then re-answer half: 24 rows, the latest answers."""
    srv = serve()
    recs = [it.reconstruction for it in srv.items]
    who = ["ann-a", "ann-b", "ann-c", "ann-d"]
    jobs = [(r, w, True) for w in who for r in recs]
    errors: list[Any] = []
    barrier = threading.Barrier(len(jobs))

    def post(rec: str, name: str, yes: bool) -> None:
        try:
            barrier.wait(timeout=20)
            status, body = request(srv, "POST", "/api/answer", body=answer(rec, name, yes))
            if status != 200:
                errors.append((status, body))
        except Exception as e:  # collected: an assertion in a thread would be lost
            errors.append(e)

    def run(batch: list[tuple[str, str, bool]]) -> None:
        nonlocal barrier
        barrier = threading.Barrier(len(batch))
        threads = [threading.Thread(target=post, args=j) for j in batch]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    run(jobs)
    run([(r, w, False) for w in who[:2] for r in recs])  # changed minds, concurrently
    assert errors == []
    records = load_manifest(folder / "annotations.csv").records
    assert len(records) == len(jobs) == 24
    got = {(r.annotator, r.reconstruction): r.recognised for r in records}
    assert got == {(w, r): w not in who[:2] for w in who for r in recs}
    status, body = request(srv, "GET", "/api/next?annotator=ann-c")
    assert json.loads(body) == {"total": 6, "answered": 6, "item": None}


# -- proxies ----------------------------------------------------------------------------------------------------------


def test_the_module_example_ignores_an_http_proxy(monkeypatch):
    """The doctest talks to 127.0.0.1: an http_proxy without no_proxy (a dead one here) must not be used."""
    import doctest

    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # discard port: nothing listens, a proxied request fails
    import urllib.request

    assert urllib.request.getproxies().get("http") == "http://127.0.0.1:9"  # the proxy is really configured
    result = doctest.testmod(server_mod, verbose=False, report=False)
    assert result.attempted >= 8 and result.failed == 0
