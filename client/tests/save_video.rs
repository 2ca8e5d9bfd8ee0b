//! `--save-video`: the returned frames become a video with the input's frame count, rate and audio.

mod common;

use common::{client, rows, sample_video, start_function, summary_of};
use slblur_client::video::{DecodeOptions, RgbFrame, decode};

fn first_frame(path: &std::path::Path) -> (RgbFrame, slblur_client::video::VideoInfo) {
    let mut first = None;
    let info = decode(path, DecodeOptions::default(), |i, f| {
        if i == 0 {
            first = Some(f);
        }
        Ok(())
    })
    .unwrap();
    (first.unwrap(), info)
}

#[test]
fn saved_video_has_every_frame_blurred_and_the_audio() {
    let function = start_function();
    let dir = tempfile::tempdir().unwrap();
    let (csv, video) = (
        dir.path().join("results.csv"),
        dir.path().join("out/blurred.mp4"),
    );
    let out = client(&[
        "run",
        "--url",
        &function.url,
        "--video",
        sample_video().to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--save-video",
        video.to_str().unwrap(),
    ]);
    summary_of(&out);
    assert!(rows(&csv).iter().all(|r| r.ok));

    let (blurred, info) = first_frame(&video);
    let (original, source) = first_frame(&sample_video());
    assert_eq!(info.frames, source.frames);
    assert_eq!(info.frames, 40);
    assert_eq!((info.width, info.height, info.fps()), (640, 360, 10.0));
    assert!(info.has_audio, "audio copied from the input");
    // Blurring changes the faces but not the rest: a moderate mean difference.
    let diff: u64 = blurred
        .data
        .iter()
        .zip(&original.data)
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = diff as f64 / original.data.len() as f64;
    assert!(mean > 1.0, "frame looks unchanged (mean diff {mean})");
    assert!(mean < 40.0, "frame looks unrelated (mean diff {mean})");
}
