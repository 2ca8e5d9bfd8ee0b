//! The network with slblur's own ops (the depthwise op alone, and the fused inverted-residual
//! blocks built on it with the other 1×1 and the transposed convolutions) gives exactly tract's
//! outputs on a real frame, at both network sizes the
//! benchmarks use, with one and two threads and with every kernel variant this CPU has (as
//! `SLBLUR_KERNELS` forces them), and on synthetic input at five more sizes. With the dense 3×3
//! convolutions too (the default), the outputs stay within rounding of tract's and the faces
//! found are the same.

use crate::support;

use slblur::detect::input::{InputShape, resize, to_tensor};
use slblur::detect::ops::{Isa, Kernels};
use slblur::detect::{Detector, OwnOps, Size};
use tract_onnx::prelude::Tensor;

fn outputs(detector: &Detector, frame: &slblur::codec::Frame, width: u32) -> Vec<Vec<f32>> {
    let shape = InputShape::for_frame(frame.width, frame.height, width, u64::MAX);
    let resized = resize(frame, shape.net);
    infer(detector, to_tensor(&resized, shape.net), shape.net)
}

/// The network's outputs for `input`, of the given size.
fn infer(detector: &Detector, input: Tensor, size: Size) -> Vec<Vec<f32>> {
    detector
        .infer(input, size)
        .expect("infer")
        .iter()
        .map(|t| {
            t.try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
                .expect("f32 output")
        })
        .collect()
}

/// The `info` of each node of the 640×384 plan whose op is `name`.
fn ops_in_plan(detector: &Detector, name: &str) -> Vec<String> {
    ops_in_plan_for(detector, (640, 384), name)
}

fn ops_in_plan_for(detector: &Detector, (width, height): (u32, u32), name: &str) -> Vec<String> {
    let size = Size { width, height };
    let plan = detector.plan(size).expect("plan");
    plan.model()
        .nodes()
        .iter()
        .filter(|node| node.op.name() == name)
        .map(|node| node.op.info().expect("info").join(" "))
        .collect()
}

#[test]
fn own_ops_give_tracts_outputs_exactly() {
    let (frame, _) =
        slblur::codec::decode(&support::fixture("group_1280x720.jpg"), u64::MAX).expect("fixture");
    for threads in [1, 2] {
        let load = |ops, kernels| {
            Detector::load(&support::model_path(), threads)
                .expect("model")
                .with_own_ops(ops)
                .with_kernels(kernels)
        };
        let tracts = load(OwnOps::None, Kernels::best());
        let expected: Vec<_> = [640, 1280]
            .map(|width| outputs(&tracts, &frame, width))
            .into();
        assert_eq!(expected[0].len(), 4);
        assert!(
            expected[0][0].iter().any(|&score| score > 0.5),
            "no face found"
        );
        for kernels in Kernels::available() {
            let (blocks, depthwise) = (
                load(OwnOps::Blocks, kernels),
                load(OwnOps::Depthwise, kernels),
            );
            let depthwise_ops = ops_in_plan(&depthwise, "Depthwise3x3");
            assert_eq!(
                depthwise_ops.len(),
                17,
                "CenterFace has seventeen 3×3 depthwise convolutions"
            );
            assert!(
                depthwise_ops
                    .iter()
                    .all(|info| info.ends_with(&format!("then ReLU; {kernels}"))),
                "each is followed by a ReLU and uses {kernels}: {depthwise_ops:?}"
            );
            let report = blocks.kernels_in_plan(Size {
                width: 640,
                height: 384,
            });
            let report = report.expect("report");
            if kernels.isa() == Isa::Portable {
                // Blocks need the fused multiply-add tract's matrix kernels use.
                assert!(report.blocks.is_empty(), "{report}");
                assert!(report.conv1x1.is_empty(), "{report}");
                assert!(report.deconv.is_empty(), "{report}");
                assert_eq!(report.depthwise.get(&Isa::Portable), Some(&17), "{report}");
            } else {
                // At 640×384, the six blocks whose rows are at least 64 points wide.
                let block_ops = ops_in_plan(&blocks, "Bottleneck");
                assert_eq!(block_ops.len(), 6, "fused blocks: {block_ops:?}");
                let residual = block_ops.iter().filter(|i| i.contains("residual")).count();
                assert_eq!(residual, 3, "blocks with a residual sum: {block_ops:?}");
                assert_eq!(ops_in_plan(&blocks, "Depthwise3x3").len(), 11);
                assert_eq!(report.blocks.get(&kernels.isa()), Some(&6), "{report}");
                assert_eq!(report.depthwise.get(&kernels.isa()), Some(&11), "{report}");
                // Every other 1×1 convolution: the narrow blocks', the feature pyramid's and
                // the head's, the heatmap's of one channel with them.
                assert_eq!(report.conv1x1.get(&kernels.isa()), Some(&30), "{report}");
                // The feature pyramid's three upsampling steps.
                assert_eq!(report.deconv.get(&kernels.isa()), Some(&3), "{report}");
            }
            // tract multiplies matrices only where slblur's ops do not run.
            let tracts_products = kernels.isa() == Isa::Portable;
            assert_eq!(!report.tract_matmul.is_empty(), tracts_products, "{report}");
            for (width, expected) in [640, 1280].into_iter().zip(&expected) {
                for (name, detector) in [("depthwise op", &depthwise), ("blocks", &blocks)] {
                    assert!(
                        outputs(detector, &frame, width) == *expected,
                        "{name}, {kernels}: outputs differ at width {width} on {threads} thread(s)"
                    );
                }
            }
        }
    }
}

#[test]
fn own_ops_give_tracts_outputs_exactly_at_other_network_sizes() {
    // Sizes where no block, some or most have rows 64 points wide or more and are fused, with
    // odd row counts; and how many blocks each fuses.
    let sizes = [
        ((96, 64), 0),
        ((160, 96), 1),
        ((416, 224), 3),
        ((224, 416), 1),
        ((1312, 704), 13),
    ];
    let tracts = Detector::load(&support::model_path(), 2)
        .expect("model")
        .with_own_ops(OwnOps::None);
    let ours = Detector::load(&support::model_path(), 2)
        .expect("model")
        .with_own_ops(OwnOps::Blocks);
    for ((width, height), fused) in sizes {
        if Kernels::best().isa() != Isa::Portable {
            let blocks = ops_in_plan_for(&ours, (width, height), "Bottleneck");
            assert_eq!(blocks.len(), fused, "{width}x{height}: {blocks:?}");
        }
        let size = Size { width, height };
        let (w, h) = (width as usize, height as usize);
        let values: Vec<f32> = (0..3 * w * h).map(|i| ((i * 7919) % 256) as f32).collect();
        let input = Tensor::from_shape(&[1, 3, h, w], &values).expect("input");
        assert!(
            infer(&ours, input.clone(), size) == infer(&tracts, input, size),
            "outputs differ at {width}x{height}"
        );
    }
}

#[test]
fn dense_op_stays_within_rounding_of_tract_and_finds_the_same_faces() {
    let threshold = slblur::Config::default().threshold;
    for file in ["group_1280x720.jpg", "astronaut_640x360.jpg"] {
        let (frame, _) = slblur::codec::decode(&support::fixture(file), u64::MAX).expect("fixture");
        for threads in [1, 2] {
            let tracts = Detector::load(&support::model_path(), threads)
                .expect("model")
                .with_own_ops(OwnOps::Blocks);
            for kernels in Kernels::available() {
                let ours = Detector::load(&support::model_path(), threads)
                    .expect("model")
                    .with_kernels(kernels);
                let dense = ours.kernels_in_plan(Size {
                    width: 640,
                    height: 384,
                });
                let dense = dense.expect("report").dense;
                let expected = usize::from(kernels.isa() != Isa::Portable) * 2;
                assert_eq!(
                    dense.values().sum::<usize>(),
                    expected,
                    "{kernels}: {dense:?}"
                );
                for width in [640, 1280] {
                    let case = format!("{file} at {width}, {kernels}, {threads} thread(s)");
                    let (a, b) = (
                        outputs(&ours, &frame, width),
                        outputs(&tracts, &frame, width),
                    );
                    // Measured on these frames: at most 1.1e-4.
                    for (output, (a, b)) in a.iter().zip(&b).enumerate() {
                        let worst = a
                            .iter()
                            .zip(b)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0.0, f32::max);
                        assert!(worst <= 1e-3, "{case}: output {output} differs by {worst}");
                    }
                    let faces = |d: &Detector| {
                        d.detect(&frame, threshold, width, u64::MAX)
                            .expect("detect")
                            .faces
                    };
                    let (ours, tracts) = (faces(&ours), faces(&tracts));
                    assert_eq!(ours.len(), tracts.len(), "{case}");
                    for (a, b) in ours.iter().zip(&tracts) {
                        assert!((a.score - b.score).abs() <= 1e-3, "{case}: {a:?} {b:?}");
                        let iou = slblur::detect::postprocess::iou(a.bbox, b.bbox);
                        assert!(iou >= 0.999, "{case}: IoU {iou}: {a:?} {b:?}");
                    }
                }
            }
        }
    }
}
