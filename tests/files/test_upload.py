"""Uploads: ``File`` / ``pathlib.Path`` in an input, ``client.files.upload``, concurrency, retries, limits."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests
from PIL import Image

import inferencesh
from inferencesh import APIError, Client, File, UploadedFile, UsageError
from inferencesh.server import LocalServer
from tests.helpers import quick_client

from .conftest import KEY, Recorder


def png(path: Path, size: tuple[int, int] = (31, 17)) -> Path:
    Image.new("RGB", size, (200, 10, 10)).save(path)
    return path


def png_bytes(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size).save(out, "PNG")
    return out.getvalue()


def stored(server: LocalServer, uri: str) -> bytes:
    """What a stored file's public URL serves, fetched without any key."""
    answer = requests.get(uri, timeout=10)
    assert answer.status_code == 200
    return answer.content


def test_upload_describes_the_file_and_serves_its_bytes(client: Client, server: LocalServer, tmp_path: Path) -> None:
    path = png(tmp_path / "cat.png")
    up = client.files.upload(path)
    assert isinstance(up, UploadedFile)
    assert (up.filename, up.content_type, up.size) == ("cat.png", "image/png", path.stat().st_size)
    assert up.uri.startswith(server.url + "/files/") and up.uri.endswith("/cat.png")
    assert stored(server, up.uri) == path.read_bytes()

    given = client.files.upload(b"RIFF....WAVE", filename="x.wav", content_type="audio/x-custom")
    assert (given.filename, given.content_type, given.size) == ("x.wav", "audio/x-custom", 12)
    assert requests.get(given.uri, timeout=10).headers["content-type"].startswith("audio/x-custom")
    guessed = client.files.upload(File(data=b"a,b\n", filename="t.csv"))
    assert guessed.content_type == "text/csv"
    unnamed = client.files.upload(b"\x00\x01")
    assert (unnamed.filename, unnamed.content_type) == ("file", "application/octet-stream")


def test_files_anywhere_in_the_input_are_uploaded_and_replaced(
    client: Client, server: LocalServer, tmp_path: Path
) -> None:
    a, b = png(tmp_path / "a.png", (3, 4)), png(tmp_path / "b.png", (5, 6))
    name = tmp_path / "prompt.txt"
    name.write_text("never uploaded")
    config = {
        "app": "infsh/echo",
        "input": {
            "image": File(a),
            "nested": {"list": [b, (File(data=b"xyz", filename="z.bin"),)], "deep": {"again": a}},
            "text": str(name),  # a string that names a file is still a string
            "at": "@" + str(name),
        },
    }
    task = client.run(config)
    out = task.output
    assert out["text"] == str(name) and out["at"] == "@" + str(name)
    assert out["image"] == out["nested"]["deep"]["again"]  # the same file goes once
    uris = [out["image"], out["nested"]["list"][0], out["nested"]["list"][1][0]]
    assert len(set(uris)) == 3
    assert [stored(server, uri) for uri in uris] == [a.read_bytes(), b.read_bytes(), b"xyz"]
    puts = [r for r in server.requests if r.method == "PUT"]
    assert len(puts) >= 3 and all(r.authorization is None for r in puts)


def test_image_info_round_trip(client: Client, tmp_path: Path) -> None:
    path = png(tmp_path / "shape.png", (123, 45))
    assert client.run({"app": "infsh/image-info", "input": {"image": path}}).output == {
        "width": 123,
        "height": 45,
        "format": "PNG",
    }
    jpeg = File(data=_jpeg(), filename="photo.jpg")
    assert client.run({"app": "infsh/image-info", "input": {"image": jpeg}}).output["format"] == "JPEG"
    with pytest.raises(inferencesh.TaskFailed, match="not a file uploaded to this server"):
        client.run({"app": "infsh/image-info", "input": {"image": "https://example.com/cat.png"}}).raise_for_status()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 9)).save(out, "JPEG")
    return out.getvalue()


def test_run_many_and_stream_many_upload_their_files(client: Client, tmp_path: Path) -> None:
    configs = [{"app": "infsh/image-info", "input": {"image": png(tmp_path / f"{n}.png", (n, n))}} for n in (2, 3)]
    assert [task.output["width"] for task in client.run_many(configs)] == [2, 3]
    last = {index: update for index, update in client.stream_many(configs) if update.is_terminal}
    assert {index: update.output["height"] for index, update in last.items()} == {0: 2, 1: 3}
    with client.run(configs[0], stream=True) as stream:
        assert [u for u in stream][-1].output["width"] == 2


def test_a_missing_file_is_a_usage_error_before_anything_is_sent(
    client: Client, server: LocalServer, tmp_path: Path
) -> None:
    server.clear_requests()
    with pytest.raises(UsageError, match="cannot read"):
        client.run({"app": "infsh/echo", "input": {"a": File(tmp_path / "missing.png")}})
    with pytest.raises(UsageError, match="not a regular file"):
        client.files.upload(tmp_path)
    assert server.requests == []
    with pytest.raises(UsageError):
        File()
    with pytest.raises(UsageError):
        File("a.png", data=b"x")
    with pytest.raises(UsageError, match="data="):
        File(b"bytes")  # type: ignore[arg-type]


def test_several_files_are_uploaded_concurrently(tmp_path: Path) -> None:
    proxy = Recorder(0, hold=3)  # forwards nothing until three uploads are open at once
    try:
        with LocalServer(speed=50, api_key=KEY, files_url=proxy.url) as server, quick_client(server.url, KEY) as client:
            proxy.target_port = server.port
            files = [File(data=bytes([n]) * 1000, filename=f"{n}.bin") for n in range(3)]
            out = client.run({"app": "infsh/echo", "input": {"files": files}}).output
    finally:
        proxy.close()
    assert not proxy.broken
    assert len(out["files"]) == 3 and all(uri.startswith(proxy.url) for uri in out["files"])


def test_the_put_is_retried_like_other_calls(tmp_path: Path) -> None:
    proxy = Recorder(0, fail_first=2)
    try:
        with LocalServer(speed=50, api_key=KEY, files_url=proxy.url) as front, quick_client(front.url, KEY) as client:
            proxy.target_port = front.port
            up = client.files.upload(b"payload", filename="p.bin")
            failing = quick_client(front.url, KEY, max_retries=1)
            with failing, pytest.raises(inferencesh.UploadError) as caught:
                proxy.fail_first = len(proxy.sent) + 5
                failing.files.upload(b"payload", filename="q.bin")
    finally:
        proxy.close()
    assert up.size == 7
    assert caught.value.status_code == 503 and "?" not in caught.value.url
    assert sum(chunk.startswith(b"PUT /uploads/") for chunk in proxy.sent) == 3 + 2


def test_size_limits_answer_413(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 5000)
    for dialect in ("v1", "hosted"):
        with LocalServer(speed=50, api_key=KEY, dialect=dialect, max_file_bytes=4096) as server, quick_client(
            server.url, KEY
        ) as client:
            with pytest.raises(APIError) as caught:
                client.files.upload(big)
            assert caught.value.status_code == 413 and "4096" in str(caught.value)
            # A body that runs over the limit its declaration passed is cut off with 413 too.
            small = client.files.upload(b"tiny")
            assert small.size == 4
            answer = requests.post(
                f"{server.url}/files",
                json={"files": [{"uri": "", "filename": "a", "content_type": "text/plain", "size": 1}]},
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=10,
            )
            item = answer.json()["data"][0]  # v1: {"data"}; hosted without X-API-Version: the legacy envelope
            over = requests.put(item["upload_url"], data=iter([b"y" * 3000, b"y" * 3000]), timeout=10)
            assert over.status_code == 413
            assert over.headers["content-type"].startswith("application/problem+json")
            assert requests.get(item["uri"], timeout=10).status_code == 404  # nothing was kept


def test_upload_targets_and_files_need_no_key_but_post_files_does(server: LocalServer) -> None:
    spec = {"files": [{"uri": "", "filename": "n.txt", "content_type": "text/plain", "size": 2}]}
    assert requests.post(f"{server.url}/files", json=spec, timeout=10).status_code == 401
    answer = requests.post(f"{server.url}/files", json=spec, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    item = answer.json()["data"][0]
    assert requests.put(item["upload_url"] + "x", data=b"hi", timeout=10).status_code == 404
    assert requests.put(item["upload_url"], data=b"hi", timeout=10).status_code == 200
    assert requests.get(item["uri"], timeout=10).content == b"hi"
    assert requests.put(item["upload_url"], data=b"ho", timeout=10).status_code == 200  # a retried PUT replaces
    assert requests.get(item["uri"], timeout=10).content == b"ho"
    assert requests.get(item["uri"] + "x", timeout=10).status_code == 404
