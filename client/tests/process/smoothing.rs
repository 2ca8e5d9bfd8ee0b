//! `--smooth` and `leaks` on a clip with single degraded frames (`scripts/degraded-clip`):
//! without smoothing the detector's misses leave faces unmasked in those frames; with
//! `run --save-video`'s default smoothing, none.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    Results, client, path_str, rows, start_function, summary_of, text, workspace,
};

/// Frames `scripts/degraded-clip` degrades: 3, 5 and 7 of every 8.
fn degraded(frame: u64) -> bool {
    matches!(frame % 8, 3 | 5 | 7)
}

fn degraded_clip(dir: &Path) -> PathBuf {
    let out = dir.join("degraded.mp4");
    let made = Command::new(workspace().join("scripts/degraded-clip"))
        .arg(&out)
        .output()
        .expect("run scripts/degraded-clip");
    assert!(made.status.success(), "{}", text(&made.stderr));
    out
}

/// `run --save-video` of `clip` with `extra` options; its rows.
fn anonymise(
    url: &str,
    clip: &Path,
    video: &Path,
    extra: &[&str],
) -> Vec<slblur_client::record::Row> {
    let csv = video.with_extension("csv");
    let mut args = vec!["run", "--url", url, "--video", path_str(clip)];
    args.extend_from_slice(extra);
    args.extend(["--save-video", path_str(video), "--out", path_str(&csv)]);
    summary_of(&client(&args));
    rows(&csv)
}

/// `leaks VIDEO ORIGINAL`: its exit status and JSON line.
fn leaks(url: &str, video: &Path, original: &Path) -> (Option<i32>, serde_json::Value) {
    let csv = video.with_extension("leaks.csv");
    let out = client(&[
        "leaks",
        path_str(video),
        path_str(original),
        "--url",
        url,
        "--out",
        path_str(&csv),
    ]);
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let json = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "last line is not JSON ({e}): {stdout}\n{}",
            text(&out.stderr)
        )
    });
    assert!(csv.exists(), "--out written");
    (out.status.code(), json)
}

#[test]
fn smoothing_masks_faces_the_detector_misses_in_single_frames() {
    let function = start_function();
    let results = Results::new();
    let clip = degraded_clip(results.dir.path());

    let plain = results.dir.path().join("plain.mp4");
    let rows_plain = anonymise(&function.url, &clip, &plain, &["--smooth", "0"]);
    assert!(
        rows_plain
            .iter()
            .all(|r| r.ok && r.smooth == 0 && r.hints == 0)
    );
    // The degraded frames are where the detector misses: fewer faces than the 2 of the clip
    // (a miss may also hide behind a false detection in a noisy frame).
    let missed: Vec<u64> = rows_plain
        .iter()
        .filter(|r| r.faces < Some(2))
        .map(|r| r.frame)
        .collect();
    assert!(!missed.is_empty(), "the degraded frames fool the detector");
    assert!(
        missed.iter().all(|&f| degraded(f)),
        "misses only where degraded: {missed:?}"
    );
    let (status, found) = leaks(&function.url, &plain, &clip);
    assert_eq!(status, Some(3), "leaks found: {found}");
    let leaked: Vec<u64> = found["leaked_frames"]
        .as_array()
        .expect("leaked_frames")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    assert!(
        leaked.iter().all(|&f| degraded(f)),
        "leaks only where degraded: {leaked:?}"
    );
    assert!(
        missed.iter().all(|f| leaked.contains(f)),
        "every miss leaks: {missed:?} in {leaked:?}"
    );

    let smoothed = results.dir.path().join("smoothed.mp4");
    let rows_smoothed = anonymise(&function.url, &clip, &smoothed, &[]);
    assert!(
        rows_smoothed.iter().all(|r| r.ok && r.smooth == 2),
        "the default for --save-video"
    );
    for row in &rows_smoothed {
        // From the second frame on, the faces of the frame before come along as hints.
        assert_eq!(row.hints > 0, row.frame > 0, "{row:?}");
        assert!(row.masked >= Some(2), "every face masked: {row:?}");
    }
    let (status, found) = leaks(&function.url, &smoothed, &clip);
    assert_eq!(status, Some(0), "no leaks: {found}");
    assert_eq!(found["unmasked_faces"], 0);
    assert!(found["faces_checked"].as_u64() >= Some(80));
    assert!(
        found["faces_missed"].as_u64() >= Some(missed.len() as u64),
        "{found}"
    );
    // The price: more of the frame is masked.
    let mean_area = |rows: &[slblur_client::record::Row]| {
        rows.iter().filter_map(|r| r.masked_area).sum::<f64>() / rows.len() as f64
    };
    assert!(mean_area(&rows_smoothed) > mean_area(&rows_plain));
}
