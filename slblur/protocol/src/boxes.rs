//! Boxes in headers: `X-Slblur-Hints` (boxes a client asks to mask besides what the detector
//! finds) and `X-Slblur-Boxes` (the boxes a reply masked) share one syntax,
//! `x1,y1,x2,y2;x1,y1,x2,y2` in input-frame pixels, so a reply's boxes can be sent back as the
//! next frame's hints unchanged.

use faas_protocol::clip;

/// `[x1, y1, x2, y2]` in pixels of the frame as sent.
pub type BoxPx = [f32; 4];

/// Hints one request may carry (header and JSON field together).
pub const MAX_HINTS: usize = 64;

/// Longest `X-Slblur-Hints` value read: [`MAX_HINTS`] boxes of four 7-character numbers.
pub const MAX_HINTS_HEADER: usize = MAX_HINTS * 32;

/// Largest coordinate accepted (frames are at most a few ten thousand pixels wide).
pub const MAX_COORDINATE: f32 = 1_000_000.0;

/// Boxes in the header syntax, coordinates rounded to whole pixels.
pub fn render(boxes: &[BoxPx]) -> String {
    let one = |b: &BoxPx| {
        b.iter()
            .map(|v| format!("{}", v.round() as i64))
            .collect::<Vec<_>>()
            .join(",")
    };
    boxes.iter().map(one).collect::<Vec<_>>().join(";")
}

/// Reads the header syntax; an empty value is no boxes. Each box is checked with [`check`].
pub fn parse(text: &str) -> Result<Vec<BoxPx>, String> {
    if text.len() > MAX_HINTS_HEADER {
        return Err(format!(
            "the hints are {} bytes, more than the {MAX_HINTS_HEADER} allowed",
            text.len()
        ));
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut boxes = Vec::new();
    for (i, item) in text.split(';').enumerate() {
        if boxes.len() == MAX_HINTS {
            return Err(format!("more than {MAX_HINTS} boxes"));
        }
        let numbers: Vec<&str> = item.split(',').map(str::trim).collect();
        let [x1, y1, x2, y2] = numbers[..] else {
            return Err(format!(
                "box {} has {} numbers, not 4 (write x1,y1,x2,y2;…)",
                i + 1,
                numbers.len()
            ));
        };
        let mut b = [0.0f32; 4];
        for (slot, n) in b.iter_mut().zip([x1, y1, x2, y2]) {
            *slot = n
                .parse::<f32>()
                .map_err(|_| format!("box {}: {:?} is not a number", i + 1, clip(n, 16)))?;
        }
        boxes.push(check(b).map_err(|why| format!("box {}: {why}", i + 1))?);
    }
    Ok(boxes)
}

/// A box is finite, within ±[`MAX_COORDINATE`], and has x1 < x2 and y1 < y2.
pub fn check(b: BoxPx) -> Result<BoxPx, String> {
    if b.iter().any(|v| !v.is_finite() || v.abs() > MAX_COORDINATE) {
        return Err(format!(
            "coordinates must be finite numbers within ±{MAX_COORDINATE}"
        ));
    }
    if b[0] >= b[2] || b[1] >= b[3] {
        return Err("x1 must be below x2 and y1 below y2".into());
    }
    Ok(b)
}

/// The box inside a `width`×`height` frame, or `None` when none of it is.
pub fn within(b: BoxPx, width: u32, height: u32) -> Option<BoxPx> {
    let (w, h) = (width as f32, height as f32);
    let c = [b[0].max(0.0), b[1].max(0.0), b[2].min(w), b[3].min(h)];
    (c[0] < c[2] && c[1] < c[3]).then_some(c)
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: BoxPx, b: BoxPx) -> f32 {
    let (x1, y1) = (a[0].max(b[0]), a[1].max(b[1]));
    let (x2, y2) = (a[2].min(b[2]), a[3].min(b[3]));
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let area = |r: BoxPx| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// The share (0–1) of a `width`×`height` frame that the union of `boxes` covers, each box
/// clipped to the frame; overlaps count once.
pub fn union_share(boxes: &[BoxPx], width: u32, height: u32) -> f64 {
    let inside: Vec<BoxPx> = boxes
        .iter()
        .filter_map(|&b| within(b, width, height))
        .collect();
    let frame = f64::from(width) * f64::from(height);
    if inside.is_empty() || frame == 0.0 {
        return 0.0;
    }
    // Sweep the vertical slabs between box edges; in each, merge the covering y-intervals.
    let mut xs: Vec<f32> = inside.iter().flat_map(|b| [b[0], b[2]]).collect();
    xs.sort_by(f32::total_cmp);
    xs.dedup();
    let mut area = 0.0f64;
    for slab in xs.windows(2) {
        let mut spans: Vec<(f32, f32)> = inside
            .iter()
            .filter(|b| b[0] <= slab[0] && b[2] >= slab[1])
            .map(|b| (b[1], b[3]))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut covered, mut reach) = (0.0f64, f32::NEG_INFINITY);
        for (y1, y2) in spans {
            let from = y1.max(reach);
            if y2 > from {
                covered += f64::from(y2 - from);
                reach = y2;
            }
        }
        area += covered * f64::from(slab[1] - slab[0]);
    }
    area / frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_round_trip_through_the_header_syntax() {
        let boxes = [[10.4, 20.0, 50.6, 60.0], [0.0, 0.0, 8.0, 9.0]];
        assert_eq!(render(&boxes), "10,20,51,60;0,0,8,9");
        assert_eq!(
            parse(&render(&boxes)),
            Ok(vec![[10.0, 20.0, 51.0, 60.0], [0.0, 0.0, 8.0, 9.0]])
        );
        assert_eq!(parse(" "), Ok(vec![]));
        assert_eq!(parse("1.5, 2, 3 ,4"), Ok(vec![[1.5, 2.0, 3.0, 4.0]]));
    }

    #[test]
    fn malformed_boxes_say_which_and_why() {
        assert!(parse("1,2,3").unwrap_err().contains("box 1 has 3 numbers"));
        assert!(parse("1,2,3,4;5,6,x,8").unwrap_err().contains("box 2"));
        assert!(
            parse("5,2,3,4")
                .unwrap_err()
                .contains("x1 must be below x2")
        );
        assert!(parse("1,2,3,inf").unwrap_err().contains("finite"));
        assert!(parse("1,2,3,NaN").unwrap_err().contains("finite"));
        let many = vec!["0,0,1,1"; MAX_HINTS + 1].join(";");
        assert!(parse(&many).unwrap_err().contains("more than 64 boxes"));
        let long = "1".repeat(MAX_HINTS_HEADER + 1);
        assert!(parse(&long).unwrap_err().contains("bytes"));
        let quoted = parse("1,2,3,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap_err();
        assert!(quoted.len() < 80, "{quoted}");
    }

    #[test]
    fn boxes_clip_to_the_frame() {
        assert_eq!(
            within([-5.0, 10.0, 50.0, 500.0], 40, 100),
            Some([0.0, 10.0, 40.0, 100.0])
        );
        assert_eq!(within([50.0, 10.0, 60.0, 20.0], 40, 100), None);
        assert!((iou([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
    }

    #[test]
    fn the_union_counts_overlaps_once_and_only_inside_the_frame() {
        assert_eq!(union_share(&[], 10, 10), 0.0);
        assert_eq!(union_share(&[[0.0, 0.0, 5.0, 10.0]], 10, 10), 0.5);
        // Two 4×4 boxes overlapping in a 2×2 square: 28 of 100 pixels.
        let two = [[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 6.0]];
        assert!((union_share(&two, 10, 10) - 0.28).abs() < 1e-9);
        // A nested box adds nothing; the part outside the frame is not counted.
        let nested = [
            [0.0, 0.0, 4.0, 4.0],
            [1.0, 1.0, 2.0, 2.0],
            [8.0, 8.0, 20.0, 20.0],
        ];
        assert!((union_share(&nested, 10, 10) - 0.20).abs() < 1e-9);
        assert_eq!(union_share(&[[-5.0, -5.0, 50.0, 50.0]], 10, 10), 1.0);
    }
}
