//! The network with slblur's depthwise op gives exactly tract's outputs on a real frame, at both
//! network sizes the benchmarks use and with one and two threads.

mod common;

use slblur::detect::Detector;
use slblur::detect::input::{InputShape, resize, to_tensor};

fn outputs(detector: &Detector, frame: &slblur::codec::Frame, width: u32) -> Vec<Vec<f32>> {
    let shape = InputShape::for_frame(frame.width, frame.height, width, u64::MAX);
    let resized = resize(frame, shape.net);
    detector
        .infer(to_tensor(&resized, shape.net), shape.net)
        .expect("infer")
        .iter()
        .map(|t| {
            t.try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
                .expect("f32 output")
        })
        .collect()
}

#[test]
fn own_kernel_gives_tracts_outputs_exactly() {
    let (frame, _) =
        slblur::codec::decode(&common::fixture("group_1280x720.jpg"), u64::MAX).expect("fixture");
    for threads in [1, 2] {
        let ours = Detector::load(&common::model_path(), threads).expect("model");
        let tracts = Detector::load(&common::model_path(), threads)
            .expect("model")
            .with_tract_depthwise();
        let plan = ours
            .plan(slblur::detect::Size {
                width: 640,
                height: 384,
            })
            .expect("plan");
        let ours_in_plan: Vec<String> = plan
            .model()
            .nodes()
            .iter()
            .filter(|node| node.op.name() == "Depthwise3x3")
            .map(|node| node.op.info().expect("info").join(" "))
            .collect();
        assert_eq!(
            ours_in_plan.len(),
            17,
            "CenterFace has seventeen 3×3 depthwise convolutions"
        );
        assert!(
            ours_in_plan.iter().all(|info| info.ends_with("then ReLU")),
            "each is followed by a ReLU: {ours_in_plan:?}"
        );
        for width in [640, 1280] {
            let (a, b) = (
                outputs(&ours, &frame, width),
                outputs(&tracts, &frame, width),
            );
            assert_eq!(a.len(), 4);
            assert!(a[0].iter().any(|&score| score > 0.5), "no face found");
            assert!(
                a == b,
                "outputs differ at width {width} on {threads} thread(s)"
            );
        }
    }
}
