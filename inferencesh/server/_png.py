"""Deterministic pictures for the fake image app: a prompt in, PNG bytes out.

The prompt's SHA-256 picks two colours for a diagonal gradient, a few
discs, and the prompt text is written on top. The same prompt always gives
byte-identical PNGs (no timestamps or random state); no model is involved.
"""

from __future__ import annotations

import base64
import hashlib
import io
import textwrap

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 256
PREVIEW_SIZE = 16


def _colour(digest: bytes, offset: int) -> tuple[int, int, int]:
    return (digest[offset], digest[offset + 1], digest[offset + 2])


def draw(prompt: str, size: int = SIZE) -> Image.Image:
    """The RGB picture for ``prompt``, ``size`` x ``size`` pixels."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    start = Image.new("RGB", (size, size), _colour(digest, 0))
    end = Image.new("RGB", (size, size), _colour(digest, 3))
    vertical = Image.linear_gradient("L")
    mask = Image.blend(vertical, vertical.transpose(Image.Transpose.ROTATE_90), 0.5)
    if digest[6] & 1:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = Image.composite(start, end, mask.resize((size, size)))

    canvas = ImageDraw.Draw(image, "RGBA")
    for disc in range(4):
        base = 7 + disc * 6
        x, y = digest[base] * size // 256, digest[base + 1] * size // 256
        radius = 12 + digest[base + 2] % (size // 4)
        fill = (*_colour(digest, base + 3), 140)
        canvas.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)

    font = ImageFont.load_default()
    lines = textwrap.wrap(prompt, width=28)[:8] or [""]
    top = size - 14 * len(lines) - 8
    canvas.rectangle((0, top - 4, size, size), fill=(0, 0, 0, 110))
    for row, line in enumerate(lines):
        canvas.text((8, top + 14 * row), line, fill=(255, 255, 255, 255), font=font)
    return image


def png_bytes(image: Image.Image) -> bytes:
    """Encode ``image`` as PNG (deterministic: no metadata chunks)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for the PNG bytes ``png``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def preview(image: Image.Image, step: int, steps: int) -> str:
    """A tiny blurred data-URL preview of ``image`` at ``step`` of ``steps``.

    Blur shrinks as the step grows, like a diffusion sampler converging.
    """
    small = image.resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BILINEAR)
    radius = 4.0 * (steps - step) / max(steps, 1)
    if radius > 0:
        small = small.filter(ImageFilter.GaussianBlur(radius))
    return data_url(png_bytes(small))
