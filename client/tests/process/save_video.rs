//! `--save-video`: the returned frames become a video with the input's frame count, rate and audio.

use crate::support::{
    Results, client, path_str, rows, run_args, sample_video, start_function, summary_of,
};
use slblur_client::video::{DecodeOptions, RgbFrame, read_frames};

fn first_frame(path: &std::path::Path) -> (RgbFrame, slblur_client::video::VideoInfo) {
    let mut first = None;
    let info = read_frames(path, DecodeOptions::default(), |i, f| {
        if i == 0 {
            first = Some(f);
        }
        Ok(())
    })
    .expect("decode");
    (first.expect("a first frame"), info)
}

#[test]
fn saved_video_has_every_frame_blurred_and_the_audio() {
    let function = start_function();
    let results = Results::new();
    let video = results.dir.path().join("out/blurred.mp4");
    let extra = ["--save-video", path_str(&video)];
    summary_of(&client(&run_args(&function.url, &results.csv, &extra)));
    assert!(rows(&results.csv).iter().all(|r| r.ok));

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
