//! CenterFace outputs → faces: heatmap peaks above the threshold, box size from `exp(scale)·4`,
//! centre from the cell plus offset, landmarks relative to the box; then NMS at IoU 0.3 and the
//! mapping back to frame coordinates. Mirrors deface's `CenterFace.decode` and `nms`.

use tract_onnx::prelude::{TValue, TVec, tract_ndarray::ArrayViewD};

use super::input::InputShape;
use super::{Face, ModelError, Source};
pub use slblur_protocol::boxes::iou;

/// Boxes overlapping a better one by at least this IoU are dropped (deface's value).
pub const NMS_IOU: f32 = 0.3;
/// The network's output stride.
const STRIDE: f32 = 4.0;

/// The faces in the four outputs (heatmap, scale, offset, landmarks) of one frame.
pub fn postprocess(
    outputs: &TVec<TValue>,
    shape: InputShape,
    threshold: f32,
) -> Result<Vec<Face>, ModelError> {
    let view = |i: usize, channels: usize| -> Result<ArrayViewD<'_, f32>, ModelError> {
        let t = outputs
            .get(i)
            .ok_or_else(|| ModelError::Outputs(format!("output {i} is missing").into()))?;
        let v = t
            .to_plain_array_view::<f32>()
            .map_err(|e| ModelError::Outputs(e.into()))?;
        match v.shape() {
            [1, c, _, _] if *c == channels => Ok(v),
            other => Err(ModelError::Outputs(
                format!("output {i} has shape {other:?}, expected [1, {channels}, h, w]").into(),
            )),
        }
    };
    let (heat, scale, offset, marks) = (view(0, 1)?, view(1, 2)?, view(2, 2)?, view(3, 10)?);
    let (rows, cols) = (heat.shape()[2], heat.shape()[3]);
    let (net_w, net_h) = (shape.net.width as f32, shape.net.height as f32);

    let mut faces = Vec::new();
    for y in 0..rows {
        for x in 0..cols {
            let score = heat[[0, 0, y, x]];
            if score <= threshold {
                continue;
            }
            let h = scale[[0, 0, y, x]].exp() * STRIDE;
            let w = scale[[0, 1, y, x]].exp() * STRIDE;
            let cy = (y as f32 + offset[[0, 0, y, x]] + 0.5) * STRIDE;
            let cx = (x as f32 + offset[[0, 1, y, x]] + 0.5) * STRIDE;
            let x1 = (cx - w / 2.0).max(0.0).min(net_w);
            let y1 = (cy - h / 2.0).max(0.0).min(net_h);
            let mut landmarks = [0f32; 10];
            for j in 0..5 {
                landmarks[2 * j] = marks[[0, 2 * j + 1, y, x]] * w + x1;
                landmarks[2 * j + 1] = marks[[0, 2 * j, y, x]] * h + y1;
            }
            faces.push(Face {
                bbox: [x1, y1, (x1 + w).min(net_w), (y1 + h).min(net_h)],
                score,
                landmarks,
                source: Source::Detected,
            });
        }
    }
    let mut kept = nms(faces, NMS_IOU);
    let (sx, sy) = shape.scale_back();
    for f in &mut kept {
        for (i, v) in f.bbox.iter_mut().chain(f.landmarks.iter_mut()).enumerate() {
            *v *= if i % 2 == 0 { sx } else { sy };
        }
    }
    Ok(kept)
}

/// Greedy non-maximum suppression, best score first.
pub fn nms(mut faces: Vec<Face>, iou_threshold: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::with_capacity(faces.len());
    for f in faces {
        if kept.iter().all(|k| iou(k.bbox, f.bbox) < iou_threshold) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], score: f32) -> Face {
        Face {
            bbox,
            score,
            landmarks: [0.0; 10],
            source: Source::Detected,
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        assert_eq!(iou([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]), 1.0);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(
            vec![
                face([0.0, 0.0, 10.0, 10.0], 0.5),
                face([1.0, 1.0, 11.0, 11.0], 0.9),
                face([50.0, 50.0, 60.0, 60.0], 0.3),
            ],
            NMS_IOU,
        );
        let scores: Vec<f32> = kept.iter().map(|f| f.score).collect();
        assert_eq!(scores, vec![0.9, 0.3]);
    }
}
