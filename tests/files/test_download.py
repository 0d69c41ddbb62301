"""Downloads: ``download``, ``save_outputs``, a temporary name, ``Range`` resumes, typed errors, safe names."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
import requests

import inferencesh
from inferencesh import Client, DownloadError, UsageError, download, save_outputs
from inferencesh.server import LocalServer
from tests.helpers import quick_client, wait_until

from .conftest import KEY, Recorder


def image_url(client: Client) -> str:
    url: str = client.run({"app": "infsh/flux-schnell", "input": {"prompt": "a red fox", "steps": 2}}).output["image"]
    return url


def test_flux_answers_the_url_of_its_png_on_the_server(client: Client, server: LocalServer) -> None:
    url = image_url(client)
    assert url.startswith(server.url + "/files/") and url.endswith(".png")
    answer = requests.get(url, timeout=10)  # public: no key
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert answer.headers["accept-ranges"] == "bytes"
    part = requests.get(url, headers={"Range": "bytes=8-15"}, timeout=10)
    assert part.status_code == 206 and part.content == answer.content[8:16]
    assert part.headers["content-range"] == f"bytes 8-15/{len(answer.content)}"
    past = requests.get(url, headers={"Range": f"bytes={len(answer.content) + 5}-"}, timeout=10)
    assert past.status_code == 416


def test_download_to_a_file_a_directory_or_the_current_directory(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = image_url(client)
    body = requests.get(url, timeout=10).content
    assert download(url, tmp_path / "deep" / "er" / "fox.png") == tmp_path / "deep" / "er" / "fox.png"
    assert (tmp_path / "deep" / "er" / "fox.png").read_bytes() == body
    assert download(url, tmp_path / "deep") == tmp_path / "deep" / "image.png"
    monkeypatch.chdir(tmp_path)
    assert download(url, progress=True).resolve() == (tmp_path / "image.png").resolve()
    assert (tmp_path / "image.png").read_bytes() == body
    assert capsys.readouterr().err == ""  # progress=True: only where someone sees it (stderr is no terminal here)
    assert download(url, progress="always").resolve() == (tmp_path / "image.png").resolve()
    assert "image.png" in capsys.readouterr().err  # "always": the tqdm bar, on stderr
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_save_outputs_saves_every_url_nested_included(client: Client, tmp_path: Path) -> None:
    a, b = image_url(client), image_url(client)
    output = {
        "image": a,
        "more": {"list": [b, a, "just text", "data:image/png;base64,AAAA"], "n": 3},
        "caption": "https is not a URL here",
    }
    task = client.run({"app": "infsh/echo", "input": output})
    saved = task.save_outputs(tmp_path / "out")
    assert set(saved) == {"image", "more.list[0]", "more.list[1]"}
    assert saved["image"] == saved["more.list[1]"] == tmp_path / "out" / "image.png"
    assert saved["more.list[0]"] == tmp_path / "out" / "image-1.png"
    assert saved["image"].read_bytes() == requests.get(a, timeout=10).content
    assert saved["more.list[0]"].read_bytes() == requests.get(b, timeout=10).content
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["image-1.png", "image.png"]
    assert save_outputs(a, tmp_path / "one") == {"output": tmp_path / "one" / "image.png"}
    failed = client.run({"app": "infsh/fail", "input": {}})
    with pytest.raises(inferencesh.TaskFailed):
        failed.save_outputs(tmp_path / "never")


def test_a_download_cut_in_the_middle_resumes_with_range(tmp_path: Path) -> None:
    proxy = Recorder(0, cut_after=3000)  # the first answer through it stops after 3000 bytes
    try:
        with LocalServer(speed=50, api_key=KEY, files_url=proxy.url) as server, quick_client(server.url, KEY) as client:
            proxy.target_port = server.port
            url = image_url(client)
            assert url.startswith(proxy.url)
            whole = requests.get(url.replace(proxy.url, server.url), timeout=10).content
            target = download(url, tmp_path / "fox.png")
    finally:
        proxy.close()
    assert target.read_bytes() == whole and len(whole) > 6000
    first, second = (bytes(sent) for sent in proxy.sent[:2])
    assert b"Range" not in first and b"Authorization" not in first + second
    asked = re.search(rb"Range: bytes=(\d+)-\r\n", second)
    assert asked is not None and 0 < int(asked.group(1)) < 3000 and b"If-Range: " in second
    # Only the rest came the second time, not the whole file again.
    assert proxy.answered[1] < len(whole) - int(asked.group(1)) + 1000


class RawFileServer:
    """A bare HTTP/1.1 server for one file, ignoring ``Range``; its first answer stops half way."""

    def __init__(self, body: bytes, *, status: int = 200, hold: Optional[threading.Event] = None) -> None:
        self.body, self.status, self.hold = body, status, hold
        self.half_sent = threading.Event()
        self.requests: list[bytes] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/files/sound.wav"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head)
                first = len(self.requests) == 1
                body = self.body if self.status == 200 else b"gone"
                reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[self.status]
                conn.sendall(
                    f"HTTP/1.1 {self.status} {reason}\r\nContent-Length: {len(body)}\r\n"
                    f"Content-Type: audio/wav\r\nConnection: close\r\n\r\n".encode()
                )
                conn.sendall(body[: len(body) // 2] if first and self.status == 200 else body)
                if first:
                    self.half_sent.set()
                    if self.hold is not None:
                        self.hold.wait(10)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture()
def body() -> bytes:
    return hashlib.sha256(b"seed").digest() * 4096  # 128 KiB


@pytest.fixture()
def raw(body: bytes) -> Iterator[RawFileServer]:
    made = RawFileServer(body)
    yield made
    made.close()


def test_without_range_support_a_cut_download_starts_over(raw: RawFileServer, body: bytes, tmp_path: Path) -> None:
    target = download(raw.url, tmp_path)
    assert target == tmp_path / "sound.wav" and target.read_bytes() == body
    assert len(raw.requests) == 2 and b"Range: bytes=65536-" in raw.requests[1]


@pytest.mark.parametrize("status", [404, 500])
def test_failures_are_typed_and_leave_no_file(status: int, body: bytes, tmp_path: Path) -> None:
    server = RawFileServer(body, status=status)
    try:
        with pytest.raises(DownloadError) as caught:
            download(server.url + "?X-Signature=s3cr3t", tmp_path / "x.wav")
    finally:
        server.close()
    assert caught.value.status_code == status and isinstance(caught.value, inferencesh.InferenceError)
    assert caught.value.path == str(tmp_path / "x.wav") and "s3cr3t" not in str(caught.value) + caught.value.url
    assert list(tmp_path.iterdir()) == []
    assert len(server.requests) == (1 if status == 404 else 6)  # 5xx retried: 1 + max_retries


def test_only_http_urls_and_names_that_stay_in_the_directory(tmp_path: Path, raw: RawFileServer) -> None:
    base = raw.url.rsplit("/", 1)[0]
    for url in ("data:image/png;base64,AAAA", "file:///etc/passwd", "ftp://example.com/a", "/etc/passwd"):
        with pytest.raises(UsageError, match="http"):
            download(url, tmp_path / "x")
    for name in ("..%2F..%2Fevil.sh", "%2E%2E", "a%5C..%5Cb", "x%00y"):
        with pytest.raises(UsageError, match="leave"):
            download(f"{base}/{name}", tmp_path)
        with pytest.raises(UsageError, match="leave"):
            save_outputs({"ok": raw.url, "bad": f"{base}/{name}"}, tmp_path / "out")
    with pytest.raises(UsageError, match="names no file"):
        download(base + "/", tmp_path)
    os.symlink("/etc/passwd", tmp_path / "sound.wav")
    with pytest.raises(UsageError, match="leave"):
        download(raw.url, tmp_path)
    assert raw.requests == []  # refused before anything was fetched
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_nothing_is_under_the_final_name_until_the_download_is_complete(body: bytes, tmp_path: Path) -> None:
    release = threading.Event()
    server = RawFileServer(body, hold=release)
    target = tmp_path / "final.wav"
    target.write_bytes(b"the previous version")
    done: list[Path] = []
    worker = threading.Thread(target=lambda: done.append(download(server.url, target)))
    worker.start()
    try:
        assert server.half_sent.wait(10)
        assert wait_until(lambda: any(p.name.endswith(".part") and p.stat().st_size > 0 for p in tmp_path.iterdir()))
        assert target.read_bytes() == b"the previous version"  # half a download is never under the final name
    finally:
        release.set()
        worker.join(30)
        server.close()
    assert done == [target] and target.read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.wav"]
