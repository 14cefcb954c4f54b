"""Prepare real digit images as MNIST is prepared (needs the ``images`` extra: Pillow).

MNIST digits are white on black, size-normalised to fit a 20x20 box (aspect ratio kept, grey levels
from anti-aliasing) and centred by their centre of mass in a 28x28 frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Anything larger than this many pixels is refused before decoding (decompression bombs).
MAX_PIXELS = 50_000_000


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading images needs Pillow: pip install 'fastfnn[images]'") from None
    return Image


def load_digit(path) -> np.ndarray:
    """Read a PNG/JPEG (any size, dark-on-light or light-on-dark) as an MNIST-style digit.

    Returns a uint8 array (784,): white digit on black, fitted into 20x20, centred by mass in 28x28.
    Raises ValueError for an unreadable, empty or blank image.
    """
    Image = _pil()
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"{path}: {img.width}x{img.height} is too large "
                                 f"(at most {MAX_PIXELS} pixels)")
            grey = np.asarray(img.convert("L"), dtype=np.float64)
    except FileNotFoundError:
        raise
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    return prepare_digit(grey, name=str(path))


def prepare_digit(grey, name="image") -> np.ndarray:
    """MNIST preparation of a 2-D grey image (any range, either polarity) -> uint8 (784,)."""
    Image = _pil()
    grey = np.asarray(grey, dtype=np.float64)
    if grey.ndim != 2 or grey.size == 0:
        raise ValueError(f"{name}: expected a 2-D grey image, got shape {grey.shape}")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > grey.mean():  # light background: make the digit the bright part
        grey = grey.max() - grey
    else:
        grey = grey - grey.min()
    if grey.max() <= 0:
        raise ValueError(f"{name}: the image is blank; expected a digit")
    ink = grey > 0.25 * grey.max()  # ignore faint background noise when finding the bounding box
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = np.where(crop > 0.25 * grey.max(), crop, 0)
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((crop * (255.0 / crop.max())).astype(np.uint8))
                       .resize(size, Image.Resampling.LANCZOS), dtype=np.float64)
    frame = np.zeros((28, 28))
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    frame[top:top + size[1], left:left + size[0]] = small
    # Shift so the centre of mass sits at the frame's centre, as MNIST was made.
    ys, xs = np.indices(frame.shape)
    total = frame.sum()
    dy = int(round(13.5 - (ys * frame).sum() / total))
    dx = int(round(13.5 - (xs * frame).sum() / total))
    frame = np.roll(np.roll(frame, dy, axis=0), dx, axis=1)
    return np.clip(frame, 0, 255).astype(np.uint8).reshape(784)
