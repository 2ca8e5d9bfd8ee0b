//! Per-stage benchmark: decode, resize, tensor, inference, NMS, anonymize, encode and the whole
//! pipeline, on a real frame with faces at 640×360 and 1280×720. Prints medians (ms), the
//! median share of a frame's handler time that is not ML (decode + anonymize + encode), and the
//! inference again, side by side, with only slblur's depthwise op instead of its fused blocks
//! and with tract's own ops throughout, each with the default's time over its own.
//!
//! `cargo bench -p slblur --bench stages` (env: `BENCH_ITERS`, default 15; `SLBLUR_ML_THREADS`;
//! `SLBLUR_MODEL`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slblur::anonymize::anonymize;
use slblur::codec::{self, Frame};
use slblur::detect::input::{InputShape, resize, to_tensor};
use slblur::detect::{Detector, OwnOps, postprocess::postprocess};
use slblur::options::ImageKind;
use slblur::pipeline::{Input, process};

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = std::env::var("SLBLUR_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("../models/centerface.onnx"));
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let config = slblur::Config::from_env()?;
    let detector = Detector::load(&model, config.ml_threads)?;
    let others = [OwnOps::Depthwise, OwnOps::None].map(|ops| {
        Detector::load(&model, config.ml_threads).map(|detector| detector.with_own_ops(ops))
    });
    let [depthwise_only, tract_only] = others;
    let (depthwise_only, tract_only) = (depthwise_only?, tract_only?);
    let source = std::fs::read(root.join("tests/fixtures/group_1280x720.jpg"))?;
    let (big, _) = codec::decode(&source, u64::MAX)?;
    println!(
        "slblur stage medians, ms ({iters} runs after 3 warm-ups; {} ML thread(s))\n",
        config.ml_threads
    );
    println!(
        "| case | decode | resize | tensor | inference | nms | anonymize | encode | total | non-ML share | inference, depthwise op only | inference, tract's ops |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
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
        depthwise_only.plan(shape.net)?;
        tract_only.plan(shape.net)?;
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
        let depthwise_infer_t =
            stage(&mut || drop(depthwise_only.infer(to_tensor(&resized, shape.net), shape.net)));
        let tract_infer_t =
            stage(&mut || drop(tract_only.infer(to_tensor(&resized, shape.net), shape.net)));
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
        println!(
            "| {label} ({} faces) | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} % | {:.1} ({:.2}×) | {:.1} ({:.2}×) |",
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
            ms(depthwise_infer_t),
            ms(depthwise_infer_t) / ms(infer_t),
            ms(tract_infer_t),
            ms(tract_infer_t) / ms(infer_t),
        );
    }
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
