"""RSS of a client uploading and downloading one large file (default 200 MB), and of the server.

``python bench/files.py [--mb 200]`` starts ``infsh serve --dialect hosted``
in a child process, writes a file of ``--mb`` MB to a temporary directory,
then in this process: ``client.files.upload(path)`` and
``inferencesh.download(uri, path)``, each under a psutil sampler (every 2
ms) of this process's RSS and of the server's. It prints one JSON object:
the baseline RSS before each step, the peak growth above it, the seconds
and MB/s, and that the bytes came back intact (SHA-256). Numbers from a run
are in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil
import requests

MB = 1024 * 1024


class Peak:
    """The peak RSS of some processes, sampled on a thread while inside."""

    def __init__(self, *pids: int) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.start = [p.memory_info().rss for p in self.processes]
        self.peak = list(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self._sample()

    def _sample(self) -> None:
        for index, process in enumerate(self.processes):
            self.peak[index] = max(self.peak[index], process.memory_info().rss)

    def __enter__(self) -> Peak:
        self.began = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.began
        self._stop.set()
        self._thread.join()
        self._sample()

    def report(self, size: int) -> dict[str, Any]:
        pairs = zip(self.start, self.peak)
        client, server = ({"baseline_mb": s / MB, "peak_growth_mb": (p - s) / MB} for s, p in pairs)
        return {"seconds": self.seconds, "mb_per_s": size / MB / self.seconds, "client": client, "server": server}


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    args = parser.parse_args()
    import inferencesh

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = [sys.executable, "-m", "inferencesh", "serve", "--dialect", "hosted", "--port", str(port)]
    server = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                requests.get(f"{url}/tasks/none", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "big.bin"
            with open(source, "wb") as out:
                for n in range(args.mb):
                    out.write(hashlib.sha256(n.to_bytes(4, "big")).digest() * (MB // 32))
            size = source.stat().st_size
            with inferencesh.inference(api_key="inf_bench", base_url=url) as client:
                warm = client.files.upload(b"warm up", filename="w.bin")  # pool, threads, imports
                inferencesh.download(warm.uri, Path(tmp) / "w.bin")
                with Peak(os.getpid(), server.pid) as up:
                    uploaded = client.files.upload(source)
                with Peak(os.getpid(), server.pid) as down:
                    target = inferencesh.download(uploaded.uri, Path(tmp) / "back.bin")
                intact = _digest(target) == _digest(source)
        print(json.dumps({"mb": args.mb, "intact": intact, "upload": up.report(size), "download": down.report(size)}))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
