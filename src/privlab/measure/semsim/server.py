"""A local web page for collecting recognisability labels: original beside reconstruction, one key per answer.

``privlab semsim annotate DIR`` serves (standard library only, bound to 127.0.0.1 by default) every pair
``{idx}_{label}_ori.png`` / ``{idx}_{label}_rec.png`` found under ``DIR`` (the originals in the same folder as the
reconstructions or in a sibling ``<folder>_ori``); the folder's path inside ``DIR`` is the pair's *setting*. Each
answer is written at once into the manifest (default ``DIR/annotations.csv``, the format of
:mod:`~privlab.measure.semsim.annotations`) by an atomic rewrite, so a refresh, a closed tab or a restarted server loses
nothing: the page asks the server for the next pair this annotator has not answered. Answering a pair again (key
``u`` goes back) replaces the earlier answer.

Keys: ``y`` / ``1`` / → = recognisable, ``n`` / ``0`` / ← = not recognisable, ``u`` = back to the previous pair.

Safety: only the image files of the queue can be fetched (nothing else under or outside ``DIR``, and not through a
symbolic link swapped in later); every request is validated (unknown path → 404, malformed query or body → 400, body
over 4 KiB → 413, a body not sent in full within 10 s → 408, ``request_timeout``); annotator names are 1–64
characters without control characters (400 naming the field); on a loopback address the ``Host`` header must name that
address (blocks DNS-rebinding pages from another site). The page has no authentication: bound to a non-loopback
``--host``, anyone who reaches the port can read the images and write answers (the CLI prints a warning).

Example (in-process, port 0 = any free port):
    >>> import tempfile, threading, torch, json, urllib.request
    >>> from privlab.data.reconstructions import save_pairs
    >>> d = tempfile.mkdtemp()
    >>> _ = save_pairs(d + "/dlg", torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), [3, 5])
    >>> srv = make_server(d, port=0)
    >>> t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    >>> url = f"http://127.0.0.1:{srv.server_address[1]}"
    >>> local = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    >>> nxt = json.load(local.open(url + "/api/next?annotator=ann"))
    >>> nxt["total"], nxt["item"]["setting"]
    (2, 'dlg')
    >>> srv.shutdown(); srv.server_close()
"""

from __future__ import annotations

import html
import ipaddress
import json
import re
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from privlab.errors import ConfigError, DataMissingError, FileFormatError, PrivlabError
from privlab.measure.semsim.annotations import Annotation, append_annotation, load_manifest, resolve_inside

__all__ = ["AnnotationServer", "PairItem", "find_pairs", "is_loopback", "make_server"]

_REC = re.compile(r"^(\d+)_(\d+)_rec\.png$")
_ANNOTATOR = re.compile(r"[\w .@+-]{1,64}")  # used with fullmatch: no trailing newline, no control character
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_BODY = 4096
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class PairItem:
    """One pair to judge (paths relative to the served folder)."""

    original: str
    reconstruction: str
    setting: str


def find_pairs(root: str | Path) -> list[PairItem]:
    """Every ``*_rec.png`` under ``root`` with its ``*_ori.png`` (same folder or sibling ``<folder>_ori``).

    Symbolic links are not followed. Raises :class:`DataMissingError` when ``root`` is not a folder and
    :class:`FileFormatError` when no pair is found.
    """
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataMissingError(f"{base} is not a folder of {{idx}}_{{label}}_ori.png / _rec.png pairs")
    items: list[PairItem] = []
    for folder in sorted([base, *[p for p in base.rglob("*") if p.is_dir() and not p.is_symlink()]]):
        if any(part.is_symlink() for part in [folder, *folder.parents] if base in part.parents):
            continue
        for rec in sorted(folder.iterdir(), key=lambda p: p.name):
            m = _REC.match(rec.name)
            if not m or rec.is_symlink() or not rec.is_file():
                continue
            name = f"{m.group(1)}_{m.group(2)}_ori.png"
            for cand in (folder / name, folder.with_name(folder.name + "_ori") / name):
                if cand.is_file() and not cand.is_symlink() and base in cand.resolve().parents:
                    rel_dir = folder.relative_to(base).as_posix()
                    items.append(
                        PairItem(
                            cand.relative_to(base).as_posix(),
                            rec.relative_to(base).as_posix(),
                            base.name if rel_dir == "." else rel_dir,
                        )
                    )
                    break
    if not items:
        raise FileFormatError(f"no pairs {{idx}}_{{label}}_ori.png / _rec.png found under {base}")
    return items


class AnnotationServer(ThreadingHTTPServer):
    """The HTTP server: the queue of pairs, the manifest it appends to, and the default annotator name."""

    daemon_threads = True
    request_queue_size = 64  # listen backlog: a burst of answers (several tabs or annotators) is queued, not reset

    def __init__(
        self,
        address: tuple[str, int],
        root: Path,
        manifest: Path,
        annotator: str | None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.root = root
        self.request_timeout = request_timeout
        self.manifest = manifest
        self.items = find_pairs(root)
        self.by_rec = {it.reconstruction: it for it in self.items}
        self.files = {p for it in self.items for p in (it.original, it.reconstruction)}
        self.default_annotator = annotator or ""
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def answered(self, annotator: str) -> set[str]:
        """Reconstructions this annotator has answered (read from the manifest, so restarts resume)."""
        if not self.manifest.exists():
            return set()
        return {r.reconstruction for r in load_manifest(self.manifest).records if r.annotator == annotator}


def make_server(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    manifest: str | Path | None = None,
    annotator: str | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
) -> AnnotationServer:
    """Build (not start) the annotation server for the pairs under ``root``; call ``serve_forever()``.

    Args:
        root: folder holding the pairs (searched recursively).
        host: address to bind (127.0.0.1: this machine only).
        port: TCP port (0: any free port, see ``server_address``).
        manifest: where answers go (default ``root/annotations.csv``); must lie inside ``root``.
        annotator: name pre-filled on the page.
        request_timeout: seconds a client may take to send its request line, each header read and its whole body;
            a slower (or half-sent) request is answered 408 or dropped, and its thread freed.

    Raises:
        DataMissingError / FileFormatError: no folder or no pairs; FileFormatError: manifest outside ``root`` or
        unreadable; ConfigError: a bad annotator name.
    """
    base = Path(root).expanduser().resolve()
    m = Path(manifest).expanduser() if manifest is not None else base / "annotations.csv"
    m = (base / m) if not m.is_absolute() else m
    if m.parent.resolve() != base and base not in m.parent.resolve().parents:
        raise FileFormatError(f"the manifest {m} must lie inside {base} (its paths are relative to that folder)")
    if m.exists():
        load_manifest(m)  # refuse to start on a corrupt manifest rather than overwrite it later
    if annotator is not None and not _ANNOTATOR.fullmatch(annotator):
        raise ConfigError(f"annotator name {annotator!r}: use 1–64 letters, digits, spaces or . @ + - _")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port must be an integer in 0–65535 (0 = any free port), got {port!r}")
    if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) or not request_timeout > 0:
        raise ConfigError(f"request timeout must be a positive number of seconds, got {request_timeout!r}")
    try:
        return AnnotationServer((host, port), base, m, annotator, float(request_timeout))
    except PrivlabError:  # no folder / no pairs (DataMissingError is an OSError too: keep its own message)
        raise
    except (OSError, OverflowError) as e:  # address in use, unknown host, a port below 1024 without rights …
        raise ConfigError(
            f"cannot serve on {host}:{port} ({e.strerror or e if isinstance(e, OSError) else e}); choose another "
            "--port (0 = any free one) or --host (default 127.0.0.1)"
        ) from None


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: AnnotationServer
    server_version = "privlab-annotate"
    sys_version = ""
    timeout = REQUEST_TIMEOUT  # seconds a client may take to send its request (a stalled body frees the thread)

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # the socket timeout StreamRequestHandler.setup applies
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints its own line
        return

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'",
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _check_host(self) -> None:
        if not is_loopback(self.server.server_address[0]):
            return
        port = self.server.server_address[1]
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        if (self.headers.get("Host") or "") not in allowed:
            raise _BadRequest(HTTPStatus.FORBIDDEN, "Host header must be this machine's address")

    def _query(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        try:
            q = parse_qs(parts.query, strict_parsing=bool(parts.query), max_num_fields=8)
        except ValueError:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "malformed query string") from None
        if any(len(v) != 1 for v in q.values()):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "each query parameter must appear once")
        return parts.path, {k: v[0] for k, v in q.items()}

    def _annotator(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "annotator: a non-empty name is required")
        if len(value) > 64:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"annotator: at most 64 characters, got {len(value)}")
        if _CONTROL.search(value):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "annotator: control characters (newline, tab, …) not allowed")
        if not _ANNOTATOR.fullmatch(value):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "annotator: 1–64 letters, digits, spaces or . @ + - _")
        return value

    def _read_body(self, length: int) -> bytes:
        """``length`` bytes within ``request_timeout`` in all (a client trickling bytes cannot hold the thread)."""
        deadline = time.monotonic() + self.server.request_timeout
        chunks: list[bytes] = []
        got = 0
        try:
            while got < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - got)
                if not chunk:
                    break  # the client closed its side: body shorter than announced
                chunks.append(chunk)
                got += len(chunk)
        except (TimeoutError, OSError):
            raise _BadRequest(HTTPStatus.REQUEST_TIMEOUT, "request body not received in time") from None
        finally:
            self.connection.settimeout(self.server.request_timeout)
        return b"".join(chunks)

    def _handle(self, fn: Any) -> None:
        try:
            try:
                self._check_host()
                fn()
            except _BadRequest as e:
                self._json(e.status, {"error": str(e)})
            except PrivlabError as e:  # e.g. the manifest became unreadable
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(e)})
            except (ConnectionError, TimeoutError):
                raise
            except Exception as e:  # a bug: answer (and keep serving) instead of dropping the connection
                import traceback

                traceback.print_exc()
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error ({type(e).__name__})"})
        except (ConnectionError, TimeoutError):  # the client went away or stalled: nothing to answer
            self.close_connection = True

    # -- routes -----------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle(self._get)

    def do_HEAD(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> None:
        path, q = self._query()
        if path == "/":
            page = _PAGE.replace("__ANNOTATOR__", html.escape(self.server.default_annotator, quote=True))
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif path == "/api/next":
            if set(q) - {"annotator"}:
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "only the 'annotator' parameter is accepted")
            who = self._annotator(q.get("annotator"))
            done = self.server.answered(who)
            todo = [it for it in self.server.items if it.reconstruction not in done]
            item = todo[0].__dict__ if todo else None
            self._json(HTTPStatus.OK, {"total": len(self.server.items), "answered": len(done), "item": item})
        elif path == "/img":
            rel = q.get("p")
            if set(q) != {"p"} or rel is None:
                raise _BadRequest(HTTPStatus.BAD_REQUEST, "expected /img?p=PATH")
            if rel not in self.server.files:  # only the queue's own images, never an arbitrary path
                raise _BadRequest(HTTPStatus.NOT_FOUND, "no such image")
            try:
                data = resolve_inside(self.server.root, rel, must_exist=True).read_bytes()
            except (PrivlabError, OSError):
                raise _BadRequest(HTTPStatus.NOT_FOUND, "no such image") from None
            self._send(HTTPStatus.OK, data, "image/png")
        else:
            raise _BadRequest(HTTPStatus.NOT_FOUND, "not found")

    def _post(self) -> None:
        path, q = self._query()
        if path != "/api/answer" or q:
            raise _BadRequest(HTTPStatus.NOT_FOUND, "not found")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "Content-Type must be application/json")
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "Content-Length required") from None
        if length < 0:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length > MAX_BODY:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        raw = self._read_body(length)
        if len(raw) != length:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "body must be a JSON object") from None
        if not isinstance(body, dict) or set(body) != {"reconstruction", "recognised", "annotator"}:
            raise _BadRequest(
                HTTPStatus.BAD_REQUEST, 'body must be {"reconstruction": …, "recognised": true|false, "annotator": …}'
            )
        if not isinstance(body["recognised"], bool):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "recognised must be true or false")
        who = self._annotator(body["annotator"])
        item = self.server.by_rec.get(body["reconstruction"]) if isinstance(body["reconstruction"], str) else None
        if item is None:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "reconstruction is not one of the served pairs")
        rec = Annotation(item.original, item.reconstruction, item.setting, body["recognised"], who)
        with self.server.lock:
            append_annotation(self.server.manifest, rec)
            answered = len(self.server.answered(who))
        self._json(HTTPStatus.OK, {"ok": True, "answered": answered, "total": len(self.server.items)})


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>privlab: is the reconstruction recognisable?</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;background:#fafafa;color:#222}
.pair{display:flex;gap:2em;margin:1em 0}.pair figure{margin:0;text-align:center}
.pair img{width:256px;height:256px;image-rendering:pixelated;border:1px solid #ccc;background:#fff}
button{font-size:1.1em;padding:.5em 1.2em;margin-right:1em}#status{color:#555}kbd{border:1px solid #aaa;
border-radius:3px;padding:0 .3em;background:#fff}
</style></head><body>
<h1>Can you recognise the original in the reconstruction?</h1>
<p>Annotator: <input id="who" value="__ANNOTATOR__" maxlength="64" placeholder="your name">
<span id="status"></span></p>
<div class="pair"><figure><img id="ori" alt="original"><figcaption>original</figcaption></figure>
<figure><img id="rec" alt="reconstruction"><figcaption>reconstruction (<span id="setting"></span>)</figcaption>
</figure></div>
<p><button id="yes">recognisable <kbd>y</kbd></button><button id="no">not recognisable <kbd>n</kbd></button>
<button id="back">back <kbd>u</kbd></button></p>
<p><small>Keys: <kbd>y</kbd>/<kbd>1</kbd>/<kbd>→</kbd> recognisable, <kbd>n</kbd>/<kbd>0</kbd>/<kbd>←</kbd> not,
<kbd>u</kbd> back. Every answer is saved at once; you can close the page and come back.</small></p>
<script>
let current=null, history=[], busy=false;
const $=id=>document.getElementById(id);
function who(){return $("who").value.trim();}
function show(item){current=item;
  if(!item){$("status").textContent="all pairs answered, thank you";$("ori").removeAttribute("src");
    $("rec").removeAttribute("src");$("setting").textContent="";return;}
  $("ori").src="/img?p="+encodeURIComponent(item.original);$("rec").src="/img?p="+encodeURIComponent(item.reconstruction);
  $("setting").textContent=item.setting;}
async function next(){if(!who()){$("status").textContent="type your name first";return;}
  const r=await fetch("/api/next?annotator="+encodeURIComponent(who()));const d=await r.json();
  if(!r.ok){$("status").textContent=d.error;return;}
  $("status").textContent=d.answered+" / "+d.total+" answered";show(d.item);}
async function answer(yes){if(busy||!current||!who())return;busy=true;
  try{const r=await fetch("/api/answer",{method:"POST",headers:{"Content-Type":"application/json"},
    body:JSON.stringify({reconstruction:current.reconstruction,recognised:yes,annotator:who()})});
    const d=await r.json();if(!r.ok){$("status").textContent=d.error;return;}
    history.push(current);await next();}finally{busy=false;}}
function back(){if(history.length){show(history.pop());$("status").textContent="answering again replaces the answer";}}
$("yes").onclick=()=>answer(true);$("no").onclick=()=>answer(false);$("back").onclick=back;
$("who").onchange=()=>{history=[];next();};
document.addEventListener("keydown",e=>{if(e.target===$("who"))return;
  if(["y","1","ArrowRight"].includes(e.key))answer(true);else if(["n","0","ArrowLeft"].includes(e.key))answer(false);
  else if(e.key==="u")back();});
next();
</script></body></html>
"""
