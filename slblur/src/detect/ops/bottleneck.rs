//! CenterFace's inverted-residual blocks (MobileNetV2's bottlenecks) as one tract op each: a 1×1
//! convolution that expands the channels sixfold and its ReLU, the 3×3 depthwise convolution and
//! its ReLU, a 1×1 convolution that projects the channels back, and the residual sum when the
//! block has one.
//!
//! As separate ops, each step writes its whole tensor to memory and the next reads it back: at
//! 640×384 the first block's expanded tensor alone is 24 MB, and tract packs every 1×1
//! convolution's input into panels before multiplying. Here the block runs a band of output rows
//! at a time: each input row is expanded straight into the depthwise op's row layout (a 1×1
//! convolution commutes with moving columns), three expanded rows are kept in a ring, and each
//! output row is filtered and projected while it is in the cache. Only the block's input and
//! output touch memory. The first block, which has no expansion, computes the dense convolution
//! before it too ([`take_stems`]), a row at a time into its ring, so that convolution's output
//! never reaches memory either.
//!
//! The arithmetic is tract's, in tract's order: a 1×1 convolution sums its inputs in order with
//! fused multiply-adds from zero, then adds the bias, then applies the ReLU or adds the residual;
//! the depthwise step is [`super::depthwise`]'s. The outputs are identical to tract's own, which
//! the tests check exactly. That holds where tract's matrix kernels fuse their multiply-adds
//! (AVX2 with FMA, AVX-512), so the rewrite happens only on such CPUs.

use std::ops::Range;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::einsum::EinSum;

use std::collections::HashMap;

use super::bands::{Geometry, Output, in_bands};
use super::dense::Dense3x3;
use super::depthwise::{Depthwise3x3, Filter, Layout, kernel_rows, relu_input, row, sole_reader};
use super::int8::{Activation, Dots, IntIsa, Quantized, product, quantize};
use super::lanes::{Isa, Kernels, LANES, Lanes, Portable, prefetch};
use super::pointwise::{BLOCK, Pointwise, Strided, pointwise};

/// The narrowest block output (in points per row) fused. Each row of a block runs its 1×1
/// convolutions over all their weights: on CenterFace's 40- and 20-point rows, where the weights
/// are largest (up to 960×160), reading them once per row cost more than tract's unfused ops
/// (at 12×20, 2.7 ms a block against 1.1).
const MIN_WIDTH: usize = 64;

/// One inverted-residual block: an optional expanding 1×1 convolution with a ReLU, a 3×3
/// depthwise convolution with a ReLU, a projecting 1×1 convolution, and optionally the sum with
/// the block's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Bottleneck {
    /// The dense convolution that makes the block's input, when the block computes it too
    /// ([`take_stems`]): the block then reads that convolution's input.
    stem: Option<Dense3x3>,
    expand: Option<Pointwise>,
    depthwise: Depthwise3x3,
    project: Pointwise,
    residual: bool,
    /// Whether the output has a batch axis (of one) before its channels, as the input may.
    batch: bool,
    /// The 1×1 convolutions in int8, when the plan is.
    pub(in crate::detect) int8: Option<Int8Block>,
    /// The vectors its kernels use.
    pub(in crate::detect) isa: Isa,
}

impl Eq for Bottleneck {}

/// A block's convolutions in int8 ([`super::int8`]), and the kernels they use.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Block {
    /// The stem ([`take_stems`]), when it reads the network's pixels ([`Dense3x3::on_pixels`]).
    stem: Option<Quantized>,
    expand: Option<Quantized>,
    project: Quantized,
    pub(in crate::detect) isa: IntIsa,
}

impl Int8Block {
    /// How many of the block's convolutions run in int8: the projection, and the expansion
    /// and the stem when the block has them in int8.
    pub fn convolutions(&self) -> usize {
        1 + usize::from(self.expand.is_some()) + usize::from(self.stem.is_some())
    }

    /// The block's convolutions with the input scales `scales` has for them (keyed by their
    /// `EinSum` nodes' names), if it has every one and each can be quantised.
    fn of(
        expand: Option<(&Pointwise, &str)>,
        project: (&Pointwise, &str),
        scales: &HashMap<String, Vec<Activation>>,
        isa: Isa,
    ) -> Option<Int8Block> {
        let quantize = |(conv, name): (&Pointwise, &str)| {
            let activations = scales.get(name)?;
            Quantized::new(&conv.weights(), conv.bias.clone(), conv.relu, activations)
        };
        let expand = match expand {
            Some(e) => Some(quantize(e)?),
            None => None,
        };
        Some(Int8Block {
            stem: None,
            expand,
            project: quantize(project)?,
            isa: IntIsa::for_isa(isa),
        })
    }
}

/// Replaces every block [`Bottleneck`] computes by one whose kernels use `kernels`, once
/// [`super::depthwise::rewrite`] has put its depthwise op in place, with its 1×1 convolutions in
/// int8 where `scales` has their inputs' scales; returns how many. Does nothing with the portable
/// kernels, which a CPU without fused multiply-add gets: there tract's matrix kernels do not
/// fuse, so a fused block would not round as they do.
pub fn rewrite(
    model: &mut TypedModel,
    kernels: Kernels,
    scales: Option<&HashMap<String, Vec<Activation>>>,
) -> TractResult<usize> {
    match kernels.fused() {
        Some(isa) => fuse(model, isa, scales),
        None => Ok(0),
    }
}

/// Replaces every block [`Bottleneck`] computes with one whose kernels use `isa`.
fn fuse(
    model: &mut TypedModel,
    isa: Isa,
    scales: Option<&HashMap<String, Vec<Activation>>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let Some(found) = Found::at(model, id, isa, scales)? else {
            continue;
        };
        let name = model.node(id).name.clone();
        super::replace(model, found.input, &name, found.op, found.output)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Makes each block without an expansion or residual sum, at stride 1, whose input is a
/// [`Dense3x3`] that nothing else reads compute that convolution too, once
/// [`super::dense::rewrite`] has put it in place; returns how many. The convolution's output
/// then never reaches memory: CenterFace's first layer writes 7.9 MB at 640×384, which its first
/// block read back.
pub fn take_stems(model: &mut TypedModel) -> TractResult<usize> {
    let mut taken = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(block) = node.op_as::<Bottleneck>() else {
            continue;
        };
        let source = model.node(node.inputs[0].node);
        let Some(stem) = source.op_as::<Dense3x3>() else {
            continue;
        };
        let fits = block.stem.is_none()
            && block.expand.is_none()
            && !block.residual
            && block.depthwise.window.stride == 1
            && stem.outputs() == block.depthwise.bias.len()
            && stem.isa == block.isa
            && sole_reader(model, node.inputs[0]).map(|n| n.id) == Some(id);
        if !fits {
            continue;
        }
        // The network's input is pixels: an int8 block takes its stem in int8 too.
        let pixels = model
            .node(source.inputs[0].node)
            .op_is::<tract_onnx::tract_core::ops::source::TypedSource>();
        let int8 = block.int8.clone().map(|int8| Int8Block {
            stem: pixels.then(|| stem.on_pixels()).flatten(),
            ..int8
        });
        let op = Bottleneck {
            stem: Some(stem.clone()),
            int8,
            ..block.clone()
        };
        let (input, name) = (source.inputs[0], node.name.clone());
        super::replace(model, input, &name, op, OutletId::new(id, 0))?;
        taken += 1;
    }
    Ok(taken)
}

/// A block found around a depthwise op: the op, the block's input and its output.
struct Found {
    op: Bottleneck,
    input: OutletId,
    output: OutletId,
}

impl Found {
    /// The block whose depthwise op is node `id`, if it is one [`Bottleneck`] computes.
    fn at(
        model: &TypedModel,
        id: usize,
        isa: Isa,
        scales: Option<&HashMap<String, Vec<Activation>>>,
    ) -> TractResult<Option<Found>> {
        let node = model.node(id);
        let Some(depthwise) = node.op_as::<Depthwise3x3>() else {
            return Ok(None);
        };
        let channels = depthwise.bias.len();
        if !depthwise.relu || channels % BLOCK != 0 {
            return Ok(None);
        }
        let (expand, input) = match expansion(model, node.inputs[0])? {
            // The expanded tensor is never made, so nothing else may read it.
            Some((expand, input, name))
                if expand.outputs == channels
                    && sole_reader(model, node.inputs[0]).map(|n| n.id) == Some(id) =>
            {
                (Some((expand, name)), input)
            }
            Some(_) => return Ok(None),
            None => (None, node.inputs[0]),
        };
        let Some((project, mut output, project_name)) = projection(model, OutletId::new(id, 0))?
        else {
            return Ok(None);
        };
        if project.inputs != channels {
            return Ok(None);
        }
        let fact = model.outlet_fact(input)?;
        let dims = fact.shape.as_concrete().map(<[usize]>::to_vec);
        let Some([in_channels, height, width]) = dims.as_deref().and_then(channels_first) else {
            return Ok(None);
        };
        let expected = expand.as_ref().map_or(channels, |e| e.0.inputs);
        if fact.datum_type != f32::datum_type() || in_channels != expected {
            return Ok(None);
        }
        let (out_height, out_width) = depthwise.window.output_size(height, width)?;
        if out_width < MIN_WIDTH {
            return Ok(None);
        }
        let mut residual = false;
        if let Some(sum) = sole_reader(model, output).filter(|n| n.op.name() == "Add") {
            let same_size =
                (out_height, out_width) == (height, width) && in_channels == project.outputs;
            if same_size && sum.inputs.contains(&input) && sum.inputs.contains(&output) {
                residual = true;
                output = OutletId::new(sum.id, 0);
            }
        }
        let batch = model.outlet_fact(output)?.rank() == 4;
        let int8 = scales.and_then(|scales| {
            let expand = expand.as_ref().map(|(conv, name)| (conv, name.as_str()));
            Int8Block::of(expand, (&project, &project_name), scales, isa)
        });
        let op = Bottleneck {
            stem: None,
            expand: expand.map(|(conv, _)| conv),
            depthwise: depthwise.clone(),
            project,
            residual,
            batch,
            int8,
            isa,
        };
        Ok(Some(Found { op, input, output }))
    }
}

/// `[channels, height, width]` of a channels-first shape with at most a batch of one before it.
fn channels_first(dims: &[usize]) -> Option<[usize; 3]> {
    match dims {
        [1, c, h, w] | [c, h, w] => Some([*c, *h, *w]),
        _ => None,
    }
}

/// When `outlet` is `max(x·W + b, 0)` over a 1×1 convolution whose steps each have one reader:
/// that convolution with its ReLU, `x`, and the product's name.
fn expansion(
    model: &TypedModel,
    outlet: OutletId,
) -> TractResult<Option<(Pointwise, OutletId, String)>> {
    let relu = model.node(outlet.node);
    let Some(sum) = relu_input(model, relu)? else {
        return Ok(None);
    };
    if sole_reader(model, sum).map(|n| n.id) != Some(relu.id) {
        return Ok(None);
    }
    let Some((product, bias)) = biased(model, model.node(sum.node))? else {
        return Ok(None);
    };
    let product = model.node(product.node);
    match pointwise_weights(model, product)? {
        Some((weights, input))
            if sole_reader(model, OutletId::new(product.id, 0)).is_some()
                && bias.len().is_multiple_of(BLOCK) =>
        {
            let conv = Pointwise::new(&weights, bias, true);
            Ok(Some((conv, input, product.name.clone())))
        }
        _ => Ok(None),
    }
}

/// When the sole reader of `outlet` is a 1×1 convolution `x·W` whose sole reader adds a bias:
/// that convolution, the sum's outlet, and the product's name.
fn projection(
    model: &TypedModel,
    outlet: OutletId,
) -> TractResult<Option<(Pointwise, OutletId, String)>> {
    let Some(product) = sole_reader(model, outlet) else {
        return Ok(None);
    };
    let Some((weights, input)) = pointwise_weights(model, product)? else {
        return Ok(None);
    };
    let Some(sum) = sole_reader(model, OutletId::new(product.id, 0)) else {
        return Ok(None);
    };
    match biased(model, sum)? {
        Some((_, bias)) if input == outlet && bias.len().is_multiple_of(BLOCK) => Ok(Some((
            Pointwise::new(&weights, bias, false),
            OutletId::new(sum.id, 0),
            product.name.clone(),
        ))),
        _ => Ok(None),
    }
}

/// When `node` adds a constant per-channel bias to a channels-first tensor: that tensor, and
/// the bias.
pub(super) fn biased(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(OutletId, Vec<f32>)>> {
    per_channel(model, node, "Add")
}

/// When `node` is the binary op `op` (`Add`, `Mul`) of a channels-first tensor and a constant
/// with one value per channel: that tensor, and the values.
pub(super) fn per_channel(
    model: &TypedModel,
    node: &TypedNode,
    op: &str,
) -> TractResult<Option<(OutletId, Vec<f32>)>> {
    if node.op.name() != op || node.inputs.len() != 2 {
        return Ok(None);
    }
    let shape = &node.outputs[0].fact.shape;
    let Some(channels) = shape
        .len()
        .checked_sub(3)
        .and_then(|axis| shape[axis].to_usize().ok())
    else {
        return Ok(None);
    };
    for (value, other) in [(0, 1), (1, 0)] {
        let Some(bias) = model.outlet_fact(node.inputs[other])?.konst.clone() else {
            continue;
        };
        // Broadcast against `[.., channels, height, width]`, only `[.., channels, 1, 1]` with
        // ones before has one value per channel.
        let dims = bias.shape();
        let per_channel = dims.len() >= 3
            && dims[dims.len() - 3..] == [channels, 1, 1]
            && dims[..dims.len() - 3].iter().all(|&d| d == 1);
        if bias.datum_type() == f32::datum_type() && per_channel {
            let bias = bias.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            return Ok(Some((node.inputs[value], bias)));
        }
    }
    Ok(None)
}

/// When `node` is a 1×1 convolution as tract declutters one, an `EinSum` of a channels-first
/// input with constant `[outputs, inputs]` weights (or `[inputs]` for one output, as the
/// heatmap's): the weights, and the input.
pub(in crate::detect) fn pointwise_weights(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(Vec<f32>, OutletId)>> {
    let Some(einsum) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    let axes = einsum.axes.to_string();
    let forms = ["IHW,", "NIHW,"].map(|i| ["OI->", "I->"].map(|w| format!("{i}{w}")));
    let shapes = forms
        .as_flattened()
        .iter()
        .flat_map(|iw| ["OHW", "NOHW"].map(|o| format!("{iw}{o}")))
        .collect::<Vec<_>>();
    if !shapes.contains(&axes)
        || einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return Ok(None);
    }
    let Some(weights) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
        return Ok(None);
    };
    let rank = if axes.contains(",OI->") { 2 } else { 1 };
    if weights.datum_type() != f32::datum_type() || weights.rank() != rank {
        return Ok(None);
    }
    let weights = weights.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
    Ok(Some((weights, node.inputs[0])))
}

impl Bottleneck {
    /// Whether the block computes the dense convolution before it ([`take_stems`]).
    pub(in crate::detect) fn has_stem(&self) -> bool {
        self.stem.is_some()
    }

    /// The channels of the block's input: its stem's, its expansion's or its depthwise step's.
    fn input_channels(&self) -> usize {
        match (&self.stem, &self.expand) {
            (Some(stem), _) => stem.inputs(),
            (None, Some(expand)) => expand.inputs,
            (None, None) => self.depthwise.bias.len(),
        }
    }

    fn output_shape(&self, height: usize, width: usize) -> TVec<usize> {
        super::output_shape(self.batch, self.project.outputs, height, width)
    }
}

impl Op for Bottleneck {
    fn name(&self) -> StaticName {
        "Bottleneck".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let channels = self.depthwise.bias.len();
        let input = self.expand.as_ref().map_or(channels, |e| e.inputs);
        let stem = self.stem.as_ref().map_or(String::new(), |stem| {
            let stride = stem.window().stride;
            format!("dense 3×3 {}→{input} stride {stride}, then ", stem.inputs())
        });
        Ok(vec![format!(
            "{stem}{input}→{channels}→{} channels, depthwise stride {}{}; {}{}",
            self.project.outputs,
            self.depthwise.window.stride,
            if self.residual { ", residual" } else { "" },
            self.isa,
            self.int8
                .as_ref()
                .map_or(String::new(), |q| format!(", 1×1 in int8 ({})", q.isa)),
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Bottleneck {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let Some([channels, height, width]) = channels_first(input.shape()) else {
            bail!("bottleneck input of shape {:?}", input.shape());
        };
        let expected = self.input_channels();
        ensure!(
            channels == expected,
            "bottleneck input of {channels} channels, expected {expected}"
        );
        // With a stem, the block's own input is the stem's output.
        let (stem, height, width) = match &self.stem {
            Some(stem) => {
                let (g, out_height) = stem.geometry(height, width)?;
                let out_width = g.out_width;
                (Some(g), out_height, out_width)
            }
            None => (None, height, width),
        };
        let (out_height, out_width) = self.depthwise.window.output_size(height, width)?;
        let layout = Layout::new(
            self.depthwise.window.stride,
            width,
            out_width,
            self.depthwise.window.pad_columns,
        );
        let geometry = Geometry {
            height,
            width,
            out_width,
            layout,
        };
        let shape = self.output_shape(out_height, out_width);
        // SAFETY: the bands together store every row of every output channel before anything
        // reads them.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let mut view = output.try_as_plain_ram_mut()?;
        let values = view.as_slice_mut::<f32>()?;
        let out = Output::new(values, out_height, out_width);
        let input = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let kernel = band_kernel(self.isa);
        in_bands(out_height, |rows| {
            kernel(self, (&geometry, stem.as_ref()), input, rows, &out)
        });
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for Bottleneck {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let dims: Vec<usize> = inputs[0]
            .shape
            .iter()
            .map(|d| Ok(d.to_usize()?))
            .collect::<TractResult<_>>()?;
        let Some([_, mut height, mut width]) = channels_first(&dims) else {
            bail!("bottleneck input of shape {dims:?}");
        };
        if let Some(stem) = &self.stem {
            (height, width) = stem.window().output_size(height, width)?;
        }
        let (out_height, out_width) = self.depthwise.window.output_size(height, width)?;
        Ok(tvec!(f32::fact(self.output_shape(out_height, out_width))))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let points = self.output_facts(inputs)?[0].shape.volume() / self.project.outputs;
        let channels = self.depthwise.bias.len();
        let expand = self.expand.as_ref().map_or(0, |e| e.inputs * channels);
        let stem = self
            .stem
            .as_ref()
            .map_or(0, |stem| 9 * stem.inputs() * channels);
        let per_point = (stem + expand) * self.depthwise.window.stride.pow(2)
            + 9 * channels
            + channels * self.project.outputs;
        Ok(tvec!((Cost::FMA(f32::datum_type()), points * per_point)))
    }
}

/// The block's geometry, and its stem's when it has one.
type Geometries<'a> = (&'a Geometry, Option<&'a Geometry>);

type BandKernel = fn(&Bottleneck, Geometries, &[f32], Range<usize>, &Output);

/// The band kernel compiled for `isa` (and the integer kernels this CPU has with it).
fn band_kernel(isa: Isa) -> BandKernel {
    match (isa, IntIsa::for_isa(isa)) {
        // SAFETY: ops are built for an `Isa` this CPU has (a `Kernels`'s, or in tests one of
        // `Isa::available`), and `IntIsa::for_isa` checks the rest.
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, IntIsa::Vnni) => {
            |op, g, input, rows, out| unsafe { band_vnni(op, g, input, rows, out) }
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, _) => {
            |op, g, input, rows, out| unsafe { band_avx512(op, g, input, rows, out) }
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, _) => |op, g, input, rows, out| unsafe { band_avx2(op, g, input, rows, out) },
        _ => band::<Portable, super::int8::Portable, 1>,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn band_vnni(op: &Bottleneck, g: Geometries, input: &[f32], rows: Range<usize>, out: &Output) {
    band::<super::lanes::Avx512, super::int8::Vnni, 4>(op, g, input, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn band_avx512(op: &Bottleneck, g: Geometries, input: &[f32], rows: Range<usize>, out: &Output) {
    // Four vectors by four channels: sixteen of the 32 registers accumulate.
    band::<super::lanes::Avx512, super::int8::Avx2, 4>(op, g, input, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn band_avx2(op: &Bottleneck, g: Geometries, input: &[f32], rows: Range<usize>, out: &Output) {
    // Two 256-bit vectors by four channels: eight of the 16 registers accumulate.
    band::<super::lanes::Avx2, super::int8::Avx2, 1>(op, g, input, rows, out)
}

/// Zeros at `padding` in each of `slot`'s laid-out rows (`len` long).
#[inline(always)]
fn zero(slot: &mut [f32], len: usize, padding: &[usize]) {
    for laid in slot.chunks_exact_mut(len) {
        for &i in padding {
            laid[i] = 0.0;
        }
    }
}

/// A 1×1 convolution of `rows` (each `len` long) into `out` (rows `len` apart): in int8 when
/// `int8` is given, quantising into `quantized` (grown once to the larger of the block's two
/// convolutions, not refilled each row), else in `f32`. In `f32`, a `PROJECTION` (32 to 192
/// inputs) runs two blocks by three vectors where the vectors have 32 registers, as
/// [`super::conv1x1`] does: about 0.3 ms less over CenterFace's six blocks on one Zen 5 thread.
/// An expansion (16 to 32 inputs) did no better that way, and keeps one block by `SPAN`.
#[inline(always)]
fn apply<V: Lanes, D: Dots, const SPAN: usize, const PROJECTION: bool>(
    float: &Pointwise,
    int8: Option<&Quantized>,
    rows: &Strided,
    len: usize,
    out: &mut [f32],
    quantized: &mut Vec<u8>,
) {
    match int8 {
        Some(conv) => {
            let size = conv.inputs * len;
            if quantized.len() < size {
                quantized.resize(size, 0);
            }
            let quantized = &mut quantized[..size];
            quantize::<D, _>(conv, 0, rows, len, quantized);
            product::<D, SPAN>(conv, quantized, len, out, len);
        }
        None if PROJECTION && V::MANY_REGISTERS => {
            pointwise::<V, 3, 2, _>(float, rows, len, out, len)
        }
        None => pointwise::<V, SPAN, 1, _>(float, rows, len, out, len),
    }
}

/// Output rows `rows` of the block, all channels, `SPAN` × [`LANES`] points per 1×1 step.
#[inline(always)]
fn band<V: Lanes, D: Dots, const SPAN: usize>(
    op: &Bottleneck,
    (g, stem_geometry): Geometries,
    input: &[f32],
    rows: Range<usize>,
    out: &Output,
) {
    let depthwise = &op.depthwise;
    let layout = &g.layout;
    let (channels, len) = (depthwise.bias.len(), layout.len);
    let padding = layout.padding();
    // Three expanded (or, without expansion, input) rows, all channels, laid out.
    let mut ring = vec![0.0; 3 * channels * len];
    let mut held: [Option<usize>; 3] = [None; 3];
    let mut laid_input = vec![0.0; op.expand.as_ref().map_or(0, |e| e.inputs * len)];
    let out_len = g.out_width.next_multiple_of(LANES);
    let mut filtered = vec![0.0; channels * out_len];
    let mut projected = vec![0.0; op.project.outputs * out_len];
    let mut quantized = Vec::new();
    let int8 = op.int8.as_ref();
    let mut stem = op
        .stem
        .as_ref()
        .zip(stem_geometry)
        .map(|(stem, stem_geometry)| {
            let rows = super::dense::Rows::new(stem, stem_geometry);
            (stem, stem_geometry, rows)
        });
    let input_row =
        |channel: usize, r: usize| &input[(channel * g.height + r) * g.width..][..g.width];
    // Each row is a new stream of a few cache lines (20 at 320 points), too short for the
    // hardware prefetcher to learn, so the rows the next output row reads are asked for now:
    // 0.3–0.4 ms less per frame at 640×384 on one Zen 5 thread.
    let next_rows = g.width * depthwise.window.stride;
    let lay_out = |channel: usize, r: usize, laid: &mut [f32]| {
        layout.lay_out(input_row(channel, r), laid);
        let next = ((channel * g.height + r + 1) * g.width).min(input.len());
        prefetch(&input[next..][..next_rows.min(input.len() - next)]);
    };
    for y in rows {
        let kernel_rows = kernel_rows(
            depthwise.window.stride,
            depthwise.window.pad_rows[0],
            g.height,
            y,
        );
        for r in kernel_rows.into_iter().flatten() {
            if held[r % 3] == Some(r) {
                continue;
            }
            let slot = &mut ring[(r % 3) * channels * len..][..channels * len];
            match (&mut stem, &op.expand) {
                (Some((stem, stem_geometry, stem_rows)), _) => {
                    // The stem's output row, straight into the layout: at stride 1 its columns
                    // are in order from the left padding on.
                    let laid = &mut slot[layout.first_column()..];
                    match int8.and_then(|q| q.stem.as_ref()) {
                        Some(conv) => stem.row_int8::<D, SPAN>(
                            conv,
                            stem_geometry,
                            input,
                            r,
                            stem_rows,
                            &mut quantized,
                            laid,
                            len,
                        ),
                        None => stem.row::<V>(stem_geometry, input, r, stem_rows, laid, len),
                    }
                    zero(slot, len, &padding);
                }
                (None, Some(expand)) => {
                    for (channel, laid) in laid_input.chunks_exact_mut(len).enumerate() {
                        lay_out(channel, r, laid);
                    }
                    let laid_input = Strided {
                        values: &laid_input,
                        stride: len,
                    };
                    let int8 = int8.and_then(|q| q.expand.as_ref());
                    apply::<V, D, SPAN, false>(
                        expand,
                        int8,
                        &laid_input,
                        len,
                        slot,
                        &mut quantized,
                    );
                    // The expansion of the padding's zeros is relu(bias); the depthwise step
                    // must read zeros there.
                    zero(slot, len, &padding);
                }
                (None, None) => {
                    for (channel, laid) in slot.chunks_exact_mut(len).enumerate() {
                        lay_out(channel, r, laid);
                    }
                }
            }
            held[r % 3] = Some(r);
        }
        for (channel, filtered) in filtered.chunks_exact_mut(out_len).enumerate() {
            let laid = kernel_rows
                .map(|r| r.map(|r| &ring[((r % 3) * channels + channel) * len..][..len]));
            let filter = Filter {
                taps: &depthwise.taps[channel],
                bias: depthwise.bias[channel],
                relu: depthwise.relu,
                fused: depthwise.fused,
            };
            row::<V>(laid, layout.reads, &filter, &mut filtered[..g.out_width]);
        }
        let filtered_rows = Strided {
            values: &filtered,
            stride: out_len,
        };
        apply::<V, D, SPAN, true>(
            &op.project,
            int8.map(|q| &q.project),
            &filtered_rows,
            out_len,
            &mut projected,
            &mut quantized,
        );
        for (channel, projected) in projected.chunks_exact(out_len).enumerate() {
            // SAFETY: row `y` belongs to this band alone, and this is its only reference.
            let out = unsafe { out.row(channel, y) };
            let projected = &projected[..g.out_width];
            if op.residual {
                for ((out, p), x) in out.iter_mut().zip(projected).zip(input_row(channel, y)) {
                    *out = p + x;
                }
            } else {
                out.copy_from_slice(projected);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ops::testing::{conv, grouped_conv, relu, run, values};
    use tract_onnx::tract_core::ops::math::add;

    /// The shape of a test block.
    #[derive(Debug, Clone, Copy)]
    struct Shape {
        input: usize,
        /// The depthwise step's channels; equal to `input` without an expansion.
        middle: usize,
        output: usize,
        expand: bool,
        stride: usize,
        residual: bool,
        size: (usize, usize),
    }

    /// One block as ONNX has it, decluttered and with the depthwise op in place.
    fn block_model(shape: Shape) -> TypedModel {
        let (height, width) = shape.size;
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, shape.input, height, width]))
            .expect("source");
        let mut y = x;
        if shape.expand {
            y = conv(&mut model, "expand", y, (shape.input, shape.middle), 1, 1);
            y = relu(&mut model, "expand.relu", y);
        }
        y = conv(
            &mut model,
            "dw",
            y,
            (shape.middle, shape.middle),
            3,
            shape.stride,
        );
        y = relu(&mut model, "dw.relu", y);
        y = conv(&mut model, "project", y, (shape.middle, shape.output), 1, 1);
        if shape.residual {
            y = model.wire_node("sum", add(), &[x, y]).expect("sum")[0];
        }
        model.select_output_outlets(&[y]).expect("outputs");
        let mut model = model.into_decluttered().expect("declutter");
        super::super::depthwise::rewrite(&mut model, Kernels::best(), false).expect("depthwise");
        model
    }

    fn rewrite_for(model: &mut TypedModel, isa: Isa) -> usize {
        fuse(model, isa, None).expect("rewrite")
    }

    #[test]
    fn matches_tract_exactly_with_every_vector_width_and_thread_count() {
        let shapes = [
            (4, 8, 4, true, 1, true, (7, 70)),
            (4, 8, 8, true, 2, false, (9, 131)),
            (8, 16, 4, true, 2, false, (6, 128)),
            (8, 8, 4, false, 1, false, (5, 64)),
            (4, 12, 8, true, 1, false, (4, 97)),
        ];
        for (input, middle, output, expand, stride, residual, size) in shapes {
            let shape = Shape {
                input,
                middle,
                output,
                expand,
                stride,
                residual,
                size,
            };
            let model = block_model(shape);
            let x = Tensor::from_shape(
                &[1, input, size.0, size.1],
                &values(input * size.0 * size.1, 11),
            )
            .expect("input");
            for isa in Isa::available() {
                let mut fused = model.clone();
                assert_eq!(rewrite_for(&mut fused, isa), 1, "{shape:?}");
                assert_eq!(
                    fused
                        .nodes()
                        .iter()
                        .filter(|n| n.op.name() == "EinSum")
                        .count(),
                    0
                );
                for threads in [1, 2] {
                    let (ours, tracts) = (
                        run(fused.clone(), &x, threads),
                        run(model.clone(), &x, threads),
                    );
                    let differ = ours.iter().zip(&tracts).filter(|(a, b)| a != b).count();
                    assert!(
                        ours.len() == tracts.len() && differ == 0,
                        "{shape:?}, {isa:?}, {threads} thread(s): {differ} of {} values differ",
                        tracts.len()
                    );
                }
            }
        }
    }

    #[test]
    fn a_block_computing_its_dense_stem_gives_the_same_outputs_as_the_two_ops() {
        // A dense 3×3 convolution at stride 2 and its ReLU, then a block without expansion.
        let (height, width) = (9, 140);
        let mut model = TypedModel::default();
        let x = model
            .add_source("x", f32::fact([1, 3, height, width]))
            .expect("source");
        let y = grouped_conv(&mut model, "stem", x, (3, 8), (3, 2), 1);
        let y = relu(&mut model, "stem.relu", y);
        let z = conv(&mut model, "dw", y, (8, 8), 3, 1);
        let z = relu(&mut model, "dw.relu", z);
        let z = conv(&mut model, "project", z, (8, 4), 1, 1);
        model.select_output_outlets(&[z]).expect("outputs");
        let model = model.into_decluttered().expect("declutter");
        let input = Tensor::from_shape(&[1, 3, height, width], &values(3 * height * width, 5))
            .expect("input");
        for kernels in Kernels::available() {
            if kernels.isa() == Isa::Portable {
                continue;
            }
            let mut apart = model.clone();
            super::super::depthwise::rewrite(&mut apart, kernels, false).expect("depthwise");
            assert_eq!(rewrite(&mut apart, kernels, None).expect("blocks"), 1);
            assert_eq!(
                super::super::dense::rewrite(&mut apart, kernels).expect("dense"),
                1
            );
            let mut together = apart.clone();
            assert_eq!(take_stems(&mut together).expect("stems"), 1, "{kernels:?}");
            let ops: Vec<_> = together.eval_order().expect("order");
            assert!(
                ops.iter()
                    .all(|&id| together.node(id).op.name() != "Dense3x3"),
                "{kernels:?}: the dense op is inside the block"
            );
            for threads in [1, 2] {
                assert!(
                    run(together.clone(), &input, threads) == run(apart.clone(), &input, threads),
                    "{kernels:?}, {threads} thread(s): outputs differ"
                );
            }
        }
    }

    #[test]
    fn leaves_narrow_rows_and_other_shapes_to_tract() {
        let fused = |shape: Shape| {
            let mut model = block_model(shape);
            rewrite_for(&mut model, Isa::Portable)
        };
        let block = Shape {
            input: 4,
            middle: 8,
            output: 4,
            expand: true,
            stride: 1,
            residual: true,
            size: (4, 64),
        };
        assert_eq!(fused(block), 1);
        assert_eq!(
            fused(Shape {
                size: (4, 63),
                ..block
            }),
            0,
            "narrower than MIN_WIDTH"
        );
        assert_eq!(
            fused(Shape { middle: 6, ..block }),
            0,
            "channels not in blocks of four"
        );
        assert_eq!(
            fused(Shape {
                output: 6,
                residual: false,
                ..block
            }),
            0
        );
        let mut model = block_model(block);
        let expanded = model.node_by_name("expand.relu").expect("expanded").id;
        let outputs = [model.outputs[0], OutletId::new(expanded, 0)];
        model.select_output_outlets(&outputs).expect("outputs");
        assert_eq!(
            rewrite_for(&mut model, Isa::Portable),
            0,
            "the expanded tensor is read elsewhere"
        );
    }
}
