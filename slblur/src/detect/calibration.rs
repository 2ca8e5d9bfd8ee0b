//! The activation scales of `SLBLUR_PRECISION=int8`, made at start-up from the float model:
//! the network runs in `f32` on the frames embedded here (the project's own test photographs,
//! [`FRAMES`]), and each channel of every 1×1 convolution's input gets the scale and zero point
//! of the range it took ([`Activation::for_range`]). The same model and frames always give the same scales; their
//! checksum goes in the start-up log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

use super::Size;
use super::input::{InputShape, resize, to_tensor};
use super::ops::bottleneck::pointwise_weights;
use super::ops::int8::{Activation, quantizable};

/// The calibration frames: a group of faces at several sizes, and one face close up.
pub const FRAMES: [(&str, &[u8]); 2] = [
    (
        "group_1280x720.jpg",
        include_bytes!("../../tests/fixtures/group_1280x720.jpg"),
    ),
    (
        "astronaut_640x360.jpg",
        include_bytes!("../../tests/fixtures/astronaut_640x360.jpg"),
    ),
];
/// The network width the frames run at (the default `SLBLUR_INFERENCE_WIDTH`).
const WIDTH: u32 = 640;

/// Each 1×1 convolution's input scales, one per channel, by the name of its `EinSum` node.
#[derive(Debug, Clone)]
pub struct Scales {
    pub by_conv: HashMap<String, Vec<Activation>>,
    /// SHA-256 of the scales, in name order: `name channel scale zero` per line.
    pub sha256: String,
}

/// A float plan whose outputs are the inputs of every 1×1 convolution, named by its `EinSum`.
type Observer = (Vec<String>, Arc<TypedRunnableModel>);

/// The observer plan for network inputs of `net`.
fn observer(model: &InferenceModel, net: Size) -> TractResult<Observer> {
    let fact = f32::fact([1, 3, net.height as usize, net.width as usize]);
    let mut typed = model
        .clone()
        .with_input_fact(0, fact.into())?
        .into_typed()?
        .into_decluttered()?;
    let (mut convs, mut outlets) = (Vec::new(), Vec::new());
    for node in typed.nodes() {
        // Only convolutions of whole blocks of output channels have int8 kernels.
        let shape = &node.outputs[0].fact.shape;
        let has_int8_kernels = || {
            let channels = shape.len().checked_sub(3).map(|axis| &shape[axis]);
            channels
                .and_then(|c| c.to_usize().ok())
                .is_some_and(quantizable)
        };
        if pointwise_weights(&typed, node)?.is_some() && has_int8_kernels() {
            convs.push(node.name.clone());
            outlets.push(node.inputs[0]);
        }
    }
    typed.select_output_outlets(&outlets)?;
    Ok((convs, typed.into_optimized()?.into_runnable()?))
}

/// Runs the float network on [`FRAMES`] and takes the range of each channel of each 1×1
/// convolution's input.
pub fn calibrate(model: &InferenceModel) -> TractResult<Scales> {
    let mut ranges: BTreeMap<String, Vec<(f32, f32)>> = BTreeMap::new();
    // Frames of the same network size share one plan (both are 640x384).
    let mut plan: Option<(Size, Observer)> = None;
    for (name, bytes) in FRAMES {
        let (frame, _) = crate::codec::decode(bytes, u64::MAX)
            .map_err(|e| TractError::msg(format!("decoding the calibration frame {name}: {e}")))?;
        let net = InputShape::for_frame(frame.width, frame.height, WIDTH, u64::MAX).net;
        if plan.as_ref().is_none_or(|(size, _)| *size != net) {
            plan = Some((net, observer(model, net)?));
        }
        let (_, (convs, observe)) = plan.as_ref().expect("made above");
        let values = observe.run(tvec!(to_tensor(&resize(&frame, net), net).into()))?;
        for (conv, value) in convs.iter().zip(&values) {
            // `[1, channels, height, width]` or `[channels, height, width]`.
            let channels = value.shape()[value.rank() - 3];
            let value = value.try_as_plain_ram()?.as_slice::<f32>()?;
            let range = ranges
                .entry(conv.clone())
                .or_insert_with(|| vec![(f32::INFINITY, f32::NEG_INFINITY); channels]);
            for (range, plane) in range
                .iter_mut()
                .zip(value.chunks_exact(value.len() / channels))
            {
                for &v in plane {
                    range.0 = range.0.min(v);
                    range.1 = range.1.max(v);
                }
            }
        }
    }
    let mut digest = Sha256::new();
    let mut by_conv = HashMap::new();
    for (conv, ranges) in ranges {
        let activations: Vec<Activation> = ranges
            .iter()
            .map(|&(min, max)| Activation::for_range(min, max))
            .collect();
        for (channel, a) in activations.iter().enumerate() {
            digest.update(format!("{conv} {channel} {:e} {}\n", a.scale, a.zero));
        }
        by_conv.insert(conv, activations);
    }
    Ok(Scales {
        by_conv,
        sha256: format!("{:x}", digest.finalize()),
    })
}
