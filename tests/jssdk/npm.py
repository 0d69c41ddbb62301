"""The official JavaScript SDK and esbuild, from npm, in ``<repo>/.node-cache`` (gitignored, reused).

``ensure()`` installs the pinned packages when the cache does not hold them
(``npm install`` from the registry, about 10 s once) and returns the cache
folder; ``bundle(entry, out, platform=...)`` bundles a script with esbuild
(the SDK's files import each other without ``.js``, which a bundler resolves
and plain Node does not). ``python -m tests.jssdk.npm`` fills the cache (what
``.ci/run`` does) and ``python -m tests.jssdk.npm page`` rebuilds the checked-in
bundle of ``examples/browser/sdk/``.

Node and npm must be on ``PATH``; without them ``NodeMissing`` is raised
(the tests skip, unless ``INFERENCESH_REQUIRE_NODE=1``, as in CI, makes it a failure).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".node-cache"
SDK_VERSION = "0.6.54"
ESBUILD_VERSION = "0.28.2"
PACKAGES = {"@inferencesh/sdk": SDK_VERSION, "esbuild": ESBUILD_VERSION}
PAGE_DIR = REPO / "examples" / "browser" / "sdk"
PAGE_ENTRY = PAGE_DIR / "page.js"
PAGE_BUNDLE = PAGE_DIR / "page.bundle.js"
#: The esbuild options of the checked-in page bundle (its build command is ``python -m tests.jssdk.npm page``).
PAGE_OPTIONS = [
    "--format=iife",
    "--target=es2020",
    "--minify",
    "--legal-comments=eof",
    "--banner:js=/* examples/browser/sdk/page.js with @inferencesh/sdk 0.6.54 and eventsource (both MIT),"
    " bundled by esbuild: python -m tests.jssdk.npm page */",
]


class NodeMissing(RuntimeError):
    """Node or npm is not installed."""


def node() -> str:
    """The path of ``node``; ``NodeMissing`` if it is not installed."""
    found = shutil.which("node")
    if found is None or shutil.which("npm") is None:
        raise NodeMissing("the JavaScript SDK tests need Node 18+ and npm (apt-get install nodejs npm)")
    return found


def _installed() -> bool:
    for name, version in PACKAGES.items():
        manifest = CACHE / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return (CACHE / "node_modules" / ".bin" / "esbuild").exists()


def ensure() -> Path:
    """The cache folder with the pinned packages, installed from npm if missing (under a file lock).

    Raises ``NodeMissing`` without Node, ``RuntimeError`` when npm fails.
    """
    node()
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            manifest = {"name": "inferencesh-node-cache", "private": True, "dependencies": PACKAGES}
            (CACHE / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=CACHE,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0 or not _installed():
                raise RuntimeError(f"npm install failed in {CACHE}:\n{done.stdout}\n{done.stderr}")
    return CACHE


def bundle(entry: Path, out: Path, *options: str, platform: str = "node") -> Path:
    """Bundle ``entry`` (its imports resolved in the cache) to ``out`` with esbuild; returns ``out``.

    Raises ``RuntimeError`` with esbuild's message when it fails.
    """
    cache = ensure()
    base = ["--bundle", f"--platform={platform}", "--log-level=warning"]
    if platform == "node":
        base.append("--format=esm")
    command = [str(cache / "node_modules" / ".bin" / "esbuild"), str(entry), *base, *options, f"--outfile={out}"]
    env = {**os.environ, "NODE_PATH": str(cache / "node_modules")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"esbuild failed:\n{done.stderr}")
    return out


def build_page(out: Optional[Path] = None) -> Path:
    """Bundle ``examples/browser/sdk/page.js`` with the SDK for browsers (to ``out``, else the checked-in file)."""
    return bundle(PAGE_ENTRY, out or PAGE_BUNDLE, *PAGE_OPTIONS, platform="browser")


if __name__ == "__main__":
    if sys.argv[1:] == ["page"]:
        print(build_page())
    else:
        print(ensure())
