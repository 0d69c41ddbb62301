"""A large file goes up and comes back down with flat memory (streamed from and to disk)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from inferencesh import download
from inferencesh.server import LocalServer
from tests.helpers import quick_client

from .conftest import KEY, PeakRSS

SIZE = 24 * 1024 * 1024


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_large_file_up_and_down_keeps_memory_flat(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        for n in range(SIZE // (1 << 20)):
            out.write(hashlib.sha256(bytes([n])).digest() * (1 << 15))
    with LocalServer(speed=50, api_key=KEY, dialect="hosted") as server, quick_client(server.url, KEY) as client:
        client.files.upload(b"warm up", filename="w.bin")  # the pool, the threads, the imports
        download(client.files.upload(b"warm up", filename="w.bin").uri, tmp_path / "w.bin")
        with PeakRSS() as up:
            uploaded = client.files.upload(source)
        with PeakRSS() as down:
            target = download(uploaded.uri, tmp_path / "back.bin")
    assert uploaded.size == SIZE and _digest(target) == _digest(source)
    # The server runs in this process too: both sides together stay well under the file's size.
    assert up.growth < SIZE / 3, up.growth
    assert down.growth < SIZE / 3, down.growth
