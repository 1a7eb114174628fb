"""The annotation page through an HTTP client: answers land in the manifest, bad requests get 4xx, files stay put."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
import torch

from privlab.data.reconstructions import save_pairs
from privlab.errors import ConfigError, FileFormatError
from privlab.measure.semsim import load_manifest
from privlab.measure.semsim.server import make_server


@pytest.fixture
def folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    save_pairs(tmp_path / "dlg", torch.rand(2, 1, 8, 8, generator=g), torch.rand(2, 1, 8, 8, generator=g), [3, 5])
    save_pairs(tmp_path / "ig", torch.rand(1, 1, 8, 8, generator=g), torch.rand(1, 1, 8, 8, generator=g), [7])
    (tmp_path.parent / "secret.txt").write_text("do not serve")
    return tmp_path


@pytest.fixture
def serve(folder):
    servers = []

    def start(**kw):
        srv = make_server(folder, port=0, **kw)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def request(srv, method, path, body=None, headers=None):
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    hdrs.update(headers or {})
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, payload


def test_answers_land_in_the_manifest_and_survive_a_restart(serve, folder):
    srv = serve()
    status, page = request(srv, "GET", "/")
    assert status == 200 and b"recognisable" in page and b"keydown" in page
    status, body = request(srv, "GET", "/api/next?annotator=alice")
    nxt = json.loads(body)
    assert status == 200 and nxt["total"] == 3 and nxt["answered"] == 0
    item = nxt["item"]
    assert item["setting"] == "dlg" and item["original"].endswith("_ori.png")
    status, png = request(srv, "GET", "/img?p=" + item["reconstruction"])
    assert status == 200 and png[:4] == b"\x89PNG"
    status, body = request(
        srv, "POST", "/api/answer", {"reconstruction": item["reconstruction"], "recognised": True, "annotator": "alice"}
    )
    assert status == 200 and json.loads(body)["answered"] == 1
    (rec,) = load_manifest(folder / "annotations.csv").records
    assert (rec.original, rec.reconstruction, rec.setting, rec.recognised, rec.annotator) == (
        item["original"], item["reconstruction"], "dlg", True, "alice")  # fmt: skip
    # a refresh re-sends the same answer: replaced, not duplicated
    request(srv, "POST", "/api/answer", {"reconstruction": item["reconstruction"], "recognised": False,
                                         "annotator": "alice"})  # fmt: skip
    (rec,) = load_manifest(folder / "annotations.csv").records
    assert rec.recognised is False
    # a new server on the same folder resumes where alice stopped; bob starts from the beginning
    srv2 = serve()
    nxt2 = json.loads(request(srv2, "GET", "/api/next?annotator=alice")[1])
    assert nxt2["answered"] == 1 and nxt2["item"]["reconstruction"] != item["reconstruction"]
    assert json.loads(request(srv2, "GET", "/api/next?annotator=bob")[1])["item"] == item


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/answer", b"{not json", 400),
        ("POST", "/api/answer", {"reconstruction": "dlg/0_3_rec.png", "recognised": "yes", "annotator": "a"}, 400),
        ("POST", "/api/answer", {"reconstruction": "../secret.txt", "recognised": True, "annotator": "a"}, 400),
        ("POST", "/api/answer", {"reconstruction": "dlg/0_3_rec.png", "recognised": True}, 400),
        ("POST", "/api/answer", {"reconstruction": "dlg/0_3_rec.png", "recognised": True, "annotator": "<x>"}, 400),
        ("POST", "/api/answer", b"x" * 5000, 413),
        ("POST", "/elsewhere", {}, 404),
        ("GET", "/api/next", None, 400),
        ("GET", "/api/next?annotator=a&x=1", None, 400),
        ("GET", "/img?p=../secret.txt", None, 404),
        ("GET", "/img?p=%2Fetc%2Fpasswd", None, 404),
        ("GET", "/img?p=annotations.csv", None, 404),
        ("GET", "/nothing", None, 404),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(serve, folder, method, path, body, status):
    srv = serve()
    got, payload = request(srv, method, path, body)
    assert got == status
    assert "error" in json.loads(payload)
    assert not (folder / "annotations.csv").exists()


def test_foreign_host_header_is_refused(serve):
    srv = serve()
    status, _ = request(srv, "GET", "/api/next?annotator=a", headers={"Host": "evil.example:80"})
    assert status == 403


def test_server_setup_errors(folder, tmp_path_factory):
    with pytest.raises(FileFormatError, match="inside"):
        make_server(folder, port=0, manifest=tmp_path_factory.mktemp("elsewhere") / "a.csv")
    with pytest.raises(ConfigError, match="annotator"):
        make_server(folder, port=0, annotator="<script>")
    with pytest.raises(FileFormatError, match="no pairs"):
        make_server(tmp_path_factory.mktemp("empty"), port=0)
