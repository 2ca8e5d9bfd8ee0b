//! slblur's own tract ops, where tract's are slow on this network: [`depthwise`] computes the
//! depthwise convolutions (and their ReLUs) faster than tract's kernel, [`bottleneck`] runs
//! each wide inverted-residual block as one op so its large intermediate tensors never reach
//! memory (the first with the dense convolution before it), [`conv1x1`] computes the other 1×1
//! convolutions without packing their inputs, [`deconv`] the feature pyramid's transposed
//! convolutions with what follows them, and [`dense`] the dense 3×3 convolutions; all on the
//! vectors of `lanes` (AVX-512, AVX2 or portable, as [`Kernels`] says). The outputs of all but
//! the dense op are identical to tract's own, which the tests check exactly; the dense op sums in
//! another order, and the tests bound its difference. With `SLBLUR_PRECISION=int8`, [`int8`] runs
//! the blocks' 1×1 convolutions in 8-bit integers (and the first layer, on the pixels), and
//! [`quantized`] the narrow blocks' ones.
mod bands;
pub mod bottleneck;
pub mod conv1x1;
pub mod deconv;
pub mod dense;
pub mod depthwise;
pub mod int8;
mod lanes;
mod pointwise;
pub mod quantized;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;
use std::fmt;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::TypedModelPatch;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

pub use lanes::{Isa, Kernels};

/// Puts `op`, named `name` and reading `input`, in place of what computes `output`.
fn replace(
    model: &mut TypedModel,
    input: OutletId,
    name: &str,
    op: impl Into<Box<dyn TypedOp>>,
    output: OutletId,
) -> TractResult<()> {
    let mut patch = TypedModelPatch::default();
    let tapped = patch.tap_model(model, input)?;
    let wired = patch.wire_node(name, op, &[tapped])?[0];
    // `shunt_outside` checks that the new output's fact matches the one it replaces.
    patch.shunt_outside(model, output, wired)?;
    patch.apply(model)
}

/// The shape of a channels-first output of `channels × height × width`, after a batch axis of
/// one if `batch`.
fn output_shape(batch: bool, channels: usize, height: usize, width: usize) -> TVec<usize> {
    let batch = batch.then_some(1);
    batch.into_iter().chain([channels, height, width]).collect()
}

/// Replaces every `Conv` node of `model` that `op_for` makes an op for (told whether a ReLU that
/// it may take in follows), with that ReLU when it is the convolution's only reader; returns how
/// many.
fn replace_convs<O: TypedOp>(
    model: &mut TypedModel,
    op_for: impl Fn(&TypedModel, &TypedNode, bool) -> TractResult<Option<O>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        if !node.op_is::<tract_onnx::tract_core::ops::cnn::Conv>() {
            continue;
        }
        let relu = depthwise::relu_after(model, id)?;
        let Some(op) = op_for(model, node, relu.is_some())? else {
            continue;
        };
        let (input, name) = (node.inputs[0], node.name.clone());
        replace(
            model,
            input,
            &name,
            op,
            OutletId::new(relu.unwrap_or(id), 0),
        )?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Which kernels a plan runs, read from the plan itself: slblur's ops with the vectors each
/// uses, and tract's matrix kernels by name, each with how many ops use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelReport {
    /// What the plans were asked for (`SLBLUR_KERNELS`, resolved).
    pub kernels: Kernels,
    pub depthwise: BTreeMap<Isa, usize>,
    pub blocks: BTreeMap<Isa, usize>,
    pub dense: BTreeMap<Isa, usize>,
    /// The other 1×1 convolutions in `f32`.
    pub conv1x1: BTreeMap<Isa, usize>,
    /// The feature pyramid's 2×2 transposed convolutions.
    pub deconv: BTreeMap<Isa, usize>,
    /// The int8 convolutions (the 1×1 ones, standalone and in blocks, and a block's stem on
    /// pixels) by integer kernels.
    pub int8: BTreeMap<int8::IntIsa, usize>,
    pub tract_matmul: BTreeMap<String, usize>,
}

impl KernelReport {
    pub fn of(kernels: Kernels, plan: &TypedModel) -> KernelReport {
        let mut report = KernelReport {
            kernels,
            depthwise: BTreeMap::new(),
            blocks: BTreeMap::new(),
            dense: BTreeMap::new(),
            conv1x1: BTreeMap::new(),
            deconv: BTreeMap::new(),
            int8: BTreeMap::new(),
            tract_matmul: BTreeMap::new(),
        };
        for node in plan.nodes() {
            if let Some(op) = node.op_as::<depthwise::Depthwise3x3>() {
                *report.depthwise.entry(op.isa).or_default() += 1;
            } else if let Some(op) = node.op_as::<bottleneck::Bottleneck>() {
                *report.blocks.entry(op.isa).or_default() += 1;
                if op.has_stem() {
                    *report.dense.entry(op.isa).or_default() += 1;
                }
                if let Some(q) = &op.int8 {
                    *report.int8.entry(q.isa).or_default() += q.convolutions();
                }
            } else if let Some(op) = node.op_as::<quantized::Int8Pointwise>() {
                *report.int8.entry(op.isa).or_default() += 1;
            } else if let Some(op) = node.op_as::<dense::Dense3x3>() {
                *report.dense.entry(op.isa).or_default() += 1;
            } else if let Some(op) = node.op_as::<conv1x1::Conv1x1>() {
                *report.conv1x1.entry(op.isa).or_default() += 1;
            } else if let Some(op) = node.op_as::<deconv::Deconv2x2>() {
                *report.deconv.entry(op.isa).or_default() += 1;
            } else if let Some(op) = node.op_as::<OptMatMul>() {
                for mmm in &op.mmm {
                    *report
                        .tract_matmul
                        .entry(mmm.name().to_string())
                        .or_default() += 1;
                }
            }
        }
        report
    }

    /// slblur's depthwise kernels, e.g. `avx512 (512-bit) x11`, or `none`.
    pub fn depthwise(&self) -> String {
        Self::own(&self.depthwise)
    }

    /// slblur's fused blocks, e.g. `avx512 (512-bit) x6`, or `none`.
    pub fn blocks(&self) -> String {
        Self::own(&self.blocks)
    }

    /// slblur's dense 3×3 convolutions, e.g. `avx512 (512-bit) x2`, or `none`.
    pub fn dense(&self) -> String {
        Self::own(&self.dense)
    }

    /// slblur's other `f32` 1×1 convolutions, e.g. `avx512 (512-bit) x29`, or `none`.
    pub fn conv1x1(&self) -> String {
        Self::own(&self.conv1x1)
    }

    /// slblur's 2×2 transposed convolutions, e.g. `avx512 (512-bit) x3`, or `none`.
    pub fn deconv(&self) -> String {
        Self::own(&self.deconv)
    }

    /// slblur's int8 convolutions, e.g. `avx512-vnni x34`, or `none`.
    pub fn int8(&self) -> String {
        Self::counted(self.int8.iter().map(|(isa, n)| (isa.to_string(), *n)))
    }

    /// tract's matrix kernels, e.g. `avx512_mmm_f32_32x12 x40`.
    pub fn tract_matmul(&self) -> String {
        Self::counted(self.tract_matmul.iter().map(|(name, n)| (name.clone(), *n)))
    }

    fn own(ops: &BTreeMap<Isa, usize>) -> String {
        Self::counted(ops.iter().map(|(isa, n)| {
            let width = isa
                .bits()
                .map_or("no explicit vectors".to_string(), |b| format!("{b}-bit"));
            (format!("{isa} ({width})"), *n)
        }))
    }

    fn counted(items: impl Iterator<Item = (String, usize)>) -> String {
        let parts: Vec<String> = items.map(|(name, n)| format!("{name} x{n}")).collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

impl fmt::Display for KernelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernels {}: depthwise {}; blocks {}; dense {}; 1×1 {}; 2×2 transposed {}; int8 {}; tract matmul {}",
            self.kernels,
            self.depthwise(),
            self.blocks(),
            self.dense(),
            self.conv1x1(),
            self.deconv(),
            self.int8(),
            self.tract_matmul()
        )
    }
}
