//! Per-stage benchmark: decode, resize, tensor, inference, NMS, anonymize, encode and the whole
//! pipeline, on a real frame with faces at 640×360 and 1280×720. Prints the kernels each op
//! runs on, medians (ms), the median share of a frame's handler time that is not ML (decode +
//! anonymize + encode), and the inference again, side by side, with slblur's kernels on each
//! narrower vector width this CPU has (as `SLBLUR_KERNELS` forces them), with only slblur's
//! depthwise op instead of its fused blocks and with tract's own ops throughout, each with its
//! time over the default's; and at the other precision (int8 when `SLBLUR_PRECISION` is fp32).
//!
//! `cargo bench -p slblur --bench stages` (env: `BENCH_ITERS`, default 15; `SLBLUR_ML_THREADS`;
//! `SLBLUR_KERNELS`; `SLBLUR_PRECISION`; `SLBLUR_MODEL`).
//!
//! With `--inference-blocks` it times the inference alone instead, in blocks that
//! `scripts/bench-serving` asks for on stdin, so that they alternate with onnxruntime's: it
//! prints one line, `kernels: …`, then for each line `N` it reads runs one untimed inference
//! at 640×384 (the astronaut fixture) and N timed ones, and prints their times in ms on one line.
//!
//! With `--saturation SECONDS` it runs `SLBLUR_WORKERS` threads, each taking the whole pipeline
//! (decode, inference with `SLBLUR_ML_THREADS` threads, blur, encode) on the 640×360 astronaut
//! frame back to back for that long, as `scripts/bench-serving` runs onnxruntime's pipelines,
//! and prints `frames N seconds S vmhwm_kb K`: slblur's throughput without HTTP or a client
//! sharing the CPUs.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use slblur::anonymize::anonymize;
use slblur::codec::{self, Frame};
use slblur::detect::input::{InputShape, resize, to_tensor};
use slblur::detect::ops::Kernels;
use slblur::detect::{Detector, OwnOps, Precision, Size, postprocess::postprocess};
use slblur::options::ImageKind;
use slblur::pipeline::{Input, process};

fn main() -> anyhow::Result<()> {
    // As the function's binary runs: freed tensors stay on the heap, not faulted back in.
    slblur::runtime::memory::tune_allocator();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = std::env::var("SLBLUR_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("../models/centerface.onnx"));
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let config = slblur::Config::from_env()?;
    if std::env::args().any(|arg| arg == "--inference-blocks") {
        return inference_blocks(&model, &root, &config);
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--saturation") {
        let seconds = args.get(at + 1).and_then(|s| s.parse().ok());
        let seconds = seconds.context("--saturation takes a number of seconds")?;
        return saturation(&model, &root, &config, seconds);
    }
    let load_at = |ops, kernels, precision| {
        Detector::load(&model, config.ml_threads)?
            .with_own_ops(ops)
            .with_kernels(kernels)
            .with_precision(precision)
    };
    let load = |ops, kernels| load_at(ops, kernels, config.precision);
    let chosen = config.kernels.kernels();
    let detector = load(OwnOps::All, chosen)?;
    // The default's kernels on each narrower vector width this CPU has, then fewer own ops.
    let mut others: Vec<(String, Detector)> = Vec::new();
    for kernels in Kernels::available() {
        if kernels.isa() < chosen.isa() || kernels == chosen {
            continue;
        }
        let label = format!("inference, {kernels} kernels");
        others.push((label, load(OwnOps::All, kernels)?));
    }
    let other = match config.precision {
        Precision::Fp32 => Precision::Int8,
        Precision::Int8 => Precision::Fp32,
    };
    others.push((
        format!("inference, {other}"),
        load_at(OwnOps::All, chosen, other)?,
    ));
    others.push((
        "inference, blocks, tract's dense convolutions".into(),
        load(OwnOps::Blocks, chosen)?,
    ));
    others.push((
        "inference, depthwise op only".into(),
        load(OwnOps::Depthwise, chosen)?,
    ));
    others.push(("inference, tract's ops".into(), load(OwnOps::None, chosen)?));
    let source = std::fs::read(root.join("tests/fixtures/group_1280x720.jpg"))?;
    let (big, _) = codec::decode(&source, u64::MAX)?;
    println!(
        "slblur stage medians, ms ({iters} runs after 3 warm-ups; {} ML thread(s); {})\n",
        config.ml_threads, config.precision
    );
    println!(
        "{}\n",
        detector.kernels_in_plan(Size {
            width: 640,
            height: 384
        })?
    );
    let other_labels: Vec<&str> = others.iter().map(|(label, _)| label.as_str()).collect();
    println!(
        "| case | decode | resize | tensor | inference | nms | anonymize | encode | total | non-ML share | {} |",
        other_labels.join(" | ")
    );
    println!(
        "|---|---|---|---|---|---|---|---|---|---|{}",
        "---|".repeat(others.len())
    );
    for (label, width, height, inference_width) in [
        ("640x360", 640, 360, 640),
        ("1280x720 (inference 640, default)", 1280, 720, 640),
        ("1280x720 (inference 1280)", 1280, 720, 0),
    ] {
        let frame = scaled(&big, width, height);
        let jpeg = codec::encode(&frame, ImageKind::Jpeg, 90)?;
        let mut options = config.frame_options();
        options.inference_width = inference_width;
        let shape =
            InputShape::for_frame(width, height, inference_width, options.max_inference_pixels);
        detector.plan(shape.net)?;
        for (_, other) in &others {
            other.plan(shape.net)?;
        }
        let faces = detector
            .detect(
                &frame,
                options.threshold,
                inference_width,
                options.max_inference_pixels,
            )?
            .faces;

        let stage = |f: &mut dyn FnMut()| median(iters, f);
        let decode_t = stage(&mut || drop(codec::decode(&jpeg, u64::MAX)));
        let resize_t = stage(&mut || drop(resize(&frame, shape.net)));
        let resized = resize(&frame, shape.net).into_owned();
        let tensor_t = stage(&mut || drop(to_tensor(&resized, shape.net)));
        let infer_t =
            stage(&mut || drop(detector.infer(to_tensor(&resized, shape.net), shape.net)));
        let others_t: Vec<Duration> = others
            .iter()
            .map(|(_, other)| {
                stage(&mut || drop(other.infer(to_tensor(&resized, shape.net), shape.net)))
            })
            .collect();
        let outputs = detector.infer(to_tensor(&resized, shape.net), shape.net)?;
        let nms_t = stage(&mut || drop(postprocess(&outputs, shape, options.threshold)));
        let anon_t = stage(&mut || {
            let mut copy = frame.clone();
            anonymize(
                &mut copy,
                &faces,
                options.mode,
                options.mask,
                options.mask_scale,
            );
        });
        let encode_t = stage(&mut || drop(codec::encode(&frame, ImageKind::Jpeg, 90)));
        // Per run, from the pipeline's own stage timings, so ML and total come from one frame.
        let mut non_ml_shares = Vec::new();
        let total_t = stage(&mut || {
            if let Ok(p) = process(&detector, Input::raw(&jpeg), &options, u64::MAX) {
                let t = p.timings;
                let non_ml = t.decode + t.blur + t.encode;
                non_ml_shares.push(non_ml / (non_ml + t.ml));
            }
        });
        non_ml_shares.sort_by(f64::total_cmp);
        let non_ml_share = non_ml_shares
            .get(non_ml_shares.len() / 2)
            .copied()
            .unwrap_or(f64::NAN);
        let others_cells: Vec<String> = others_t
            .iter()
            .map(|&t| format!("{:.1} ({:.2}×)", ms(t), ms(t) / ms(infer_t)))
            .collect();
        println!(
            "| {label} ({} faces) | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} % | {} |",
            faces.len(),
            ms(decode_t),
            ms(resize_t),
            ms(tensor_t),
            ms(infer_t),
            ms(nms_t),
            ms(anon_t),
            ms(encode_t),
            ms(total_t),
            100.0 * non_ml_share,
            others_cells.join(" | "),
        );
    }
    Ok(())
}

/// The inference alone at 640×384, in blocks asked for on stdin (see the module's comment).
fn inference_blocks(model: &Path, root: &Path, config: &slblur::Config) -> anyhow::Result<()> {
    let detector = Detector::configured(model, config)?;
    let source = std::fs::read(root.join("tests/fixtures/astronaut_640x360.jpg"))?;
    let (frame, _) = codec::decode(&source, u64::MAX)?;
    let shape = InputShape::for_frame(frame.width, frame.height, 640, u64::MAX);
    let resized = resize(&frame, shape.net).into_owned();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", detector.kernels_in_plan(shape.net)?)?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let n: usize = line?.trim().parse()?;
        detector.infer(to_tensor(&resized, shape.net), shape.net)?;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            // As onnxruntime's times start from a tensor made, so do these.
            let input = to_tensor(&resized, shape.net);
            let t = Instant::now();
            detector.infer(input, shape.net)?;
            times.push(format!("{:.3}", ms(t.elapsed())));
        }
        writeln!(out, "{}", times.join(" "))?;
        out.flush()?;
    }
    Ok(())
}

/// Frames/s of the whole pipeline in process (see the module's comment).
fn saturation(
    model: &Path,
    root: &Path,
    config: &slblur::Config,
    seconds: f64,
) -> anyhow::Result<()> {
    slblur::runtime::memory::arenas(config.server.workers);
    let detector = Detector::configured(model, config)?;
    let jpeg = std::fs::read(root.join("tests/fixtures/astronaut_640x360.jpg"))?;
    let options = config.frame_options();
    let frame = || process(&detector, Input::raw(&jpeg), &options, u64::MAX);
    frame()?;
    let frames = AtomicUsize::new(0);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..config.server.workers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    while Instant::now() < end {
                        frame()?;
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?)
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "frames {} seconds {elapsed:.3} vmhwm_kb {peak}",
        frames.load(Ordering::Relaxed)
    );
    Ok(())
}

fn scaled(frame: &Frame, width: u32, height: u32) -> Frame {
    let rgb = resize(frame, slblur::detect::Size { width, height }).into_owned();
    Frame { width, height, rgb }
}

fn median(iters: usize, f: &mut dyn FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<Duration> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
