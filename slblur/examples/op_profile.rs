//! Where the inference's time goes: runs the optimised 640×384 plan on a real frame and times
//! every node, then prints the nodes by total time with their share.
//!
//! Run: `cargo run --release -p slblur --example op_profile` (SLBLUR_ML_THREADS, SLBLUR_KERNELS,
//! SLBLUR_PRECISION and BENCH_ITERS as for the stages bench; nodes that take at least MIN_MS ms
//! are listed, 0.2 unless set: 0 lists every node).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use slblur::codec;
use slblur::detect::Detector;
use slblur::detect::input::{InputShape, resize, to_tensor};
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    // As the function's binary runs: freed tensors stay on the heap, not faulted back in.
    slblur::runtime::memory::tune_allocator();
    if let Err(e) = run() {
        eprintln!("{e:?}");
        std::process::exit(1);
    }
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = slblur::Config::from_env()?;
    let model = root.join("../models/centerface.onnx");
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let detector = Detector::configured(&model, &config)?;
    let source = std::fs::read(root.join("tests/fixtures/astronaut_640x360.jpg"))?;
    let (frame, _) = codec::decode(&source, u64::MAX)?;
    let shape = InputShape::for_frame(frame.width, frame.height, 640, u64::MAX);
    let resized = resize(&frame, shape.net).into_owned();
    let plan = detector.plan(shape.net)?;
    let mut state = tract_onnx::tract_core::plan::SimpleState::new(&plan)?;
    let mut per_node: HashMap<usize, Duration> = HashMap::new();
    let mut whole = Duration::ZERO;
    for i in 0..=iters {
        let input = to_tensor(&resized, shape.net);
        let t = Instant::now();
        let mut times = Vec::new();
        detector.on_threads(|| {
            state.run_plan_with_eval(tvec!(input.into()), |ctx, op_state, node, inputs| {
                let t = Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                times.push((node.id, t.elapsed()));
                out
            })
        })?;
        if i > 0 {
            whole += t.elapsed();
            for (id, d) in times {
                *per_node.entry(id).or_default() += d;
            }
        }
    }
    let model = plan.model();
    let mut rows: Vec<(usize, Duration)> = per_node.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let total_ms = whole.as_secs_f64() * 1000.0 / iters as f64;
    println!(
        "inference {total_ms:.2} ms (mean of {iters}), {} threads",
        config.ml_threads
    );
    let listed: f64 = std::env::var("MIN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.2);
    let mut by_kind: HashMap<String, f64> = HashMap::new();
    for (id, d) in &rows {
        let node = model.node(*id);
        let ms = d.as_secs_f64() * 1000.0 / iters as f64;
        *by_kind.entry(node.op().name().to_string()).or_default() += ms;
        if ms >= listed {
            let out = &model.outlet_fact(OutletId::new(*id, 0))?.shape;
            println!(
                "{ms:7.2} ms {:5.1} %  {:<28} {:<40} -> {out:?}",
                ms / total_ms * 100.0,
                node.op().name(),
                node.name
            );
        }
    }
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("\nby op:");
    for (kind, ms) in kinds {
        println!("{ms:7.2} ms {:5.1} %  {kind}", ms / total_ms * 100.0);
    }
    Ok(())
}
