"""No request of the SDK carries the key to any host but its base URL: every call that touches files.

The server hands out upload and file URLs on a ``Recorder`` (another port:
another origin, as a storage host is), which keeps every byte it was sent.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from inferencesh import File, download, save_outputs
from inferencesh.server import LocalServer
from tests.helpers import quick_client

from .conftest import KEY, Recorder

FORMS = [KEY.encode(), base64.b64encode(KEY.encode()), base64.b64encode(f":{KEY}".encode()), b"Authorization"]


@pytest.fixture(params=["v1", "hosted"])
def behind(request: pytest.FixtureRequest) -> Iterator[tuple[LocalServer, Recorder]]:
    proxy = Recorder(0)
    try:
        with LocalServer(speed=50, api_key=KEY, dialect=request.param, files_url=proxy.url) as server:
            proxy.target_port = server.port
            yield server, proxy
    finally:
        proxy.close()


def test_no_call_sends_the_key_to_the_file_host(behind: tuple[LocalServer, Recorder], tmp_path: Path) -> None:
    server, proxy = behind
    picture = tmp_path / "in.png"
    Image.new("RGB", (7, 5)).save(picture)
    info = {"app": "infsh/image-info", "input": {"image": picture}}
    flux = {"app": "infsh/flux-schnell", "input": {"prompt": "keys", "steps": 1}}
    with quick_client(server.url, KEY) as client:
        assert client.files.upload(picture).uri.startswith(proxy.url)
        assert client.files.upload(File(data=b"abc", filename="a.txt")).uri.startswith(proxy.url)
        assert client.run(info).output["width"] == 7
        with client.run(info, stream=True) as stream:
            assert [u for u in stream][-1].output["height"] == 5
        accepted = client.run(info, wait=False)
        assert client.tasks.get(accepted.id).input["image"].startswith(proxy.url)
        assert len(client.run_many([info, info])) == 2
        assert len([u for _, u in client.stream_many([info]) if u.is_terminal]) == 1
        task = client.run(flux)
        url = task.output["image"]
        assert url.startswith(proxy.url)
        download(url, tmp_path / "a.png", progress=True)
        save_outputs(task.output, tmp_path / "b")
        task.save_outputs(tmp_path / "c")
    _cli(server, tmp_path, picture)
    sent = proxy.everything
    assert sent.count(b"PUT /uploads/") >= 8 and sent.count(b"GET /files/") >= 4
    for form in FORMS:
        assert form not in sent, form
    # ...while every request to the base URL but the public ones carried it.
    for record in server.requests:
        if not record.path.startswith(("/uploads/", "/files/")) or record.method == "POST":
            assert record.authorization == f"Bearer {KEY}", record.path


def _cli(server: LocalServer, tmp_path: Path, picture: Path) -> None:
    """``infsh run`` with an ``@path`` input and ``--save``: the same, from the command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    env.update(INFERENCE_API_KEY=KEY, INFERENCE_BASE_URL=server.url)
    given = tmp_path / "input.json"
    given.write_text(json.dumps({"image": f"@{picture}"}))
    infsh = [sys.executable, "-m", "inferencesh", "run"]
    done = subprocess.run([*infsh, "infsh/image-info", "--input-file", str(given)], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"width": 7, "height": 5, "format": "PNG"}
    out = tmp_path / "cli-out"
    flux = [*infsh, "infsh/flux-schnell", "--input", '{"prompt": "cli", "steps": 1}', "--save", str(out)]
    done = subprocess.run(flux, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "image.png").read_bytes().startswith(b"\x89PNG")
    assert f"saved image: {out / 'image.png'}" in done.stderr
