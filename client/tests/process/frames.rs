//! `frames`: decoding the sample video into image files.

use std::path::Path;
use std::process::Output;

use crate::support::{client_plain, path_str, sample_video, text};
use slblur_client::video::count_frames;
use slblur_client::video::{DecodeOptions, read_frames};

/// `frames --video <sample> OUT_FLAG DIR EXTRA...` (`OUT_FLAG` is `--out-dir` or `-o`).
fn frames_into(out_flag: &str, dir: &Path, extra: &[&str]) -> Output {
    let video = sample_video();
    let mut args = vec![
        "frames",
        "--video",
        path_str(&video),
        out_flag,
        path_str(dir),
    ];
    args.extend_from_slice(extra);
    client_plain(&args)
}

#[test]
fn sample_video_has_40_frames_at_10_fps_with_audio() {
    assert_eq!(count_frames(&sample_video()).expect("count frames"), 40);
    let info = read_frames(&sample_video(), DecodeOptions::default(), |_, f| {
        assert_eq!(f.data.len(), 640 * 360 * 3);
        Ok(())
    })
    .expect("decode");
    assert_eq!((info.width, info.height, info.frames), (640, 360, 40));
    assert_eq!(info.fps(), 10.0);
    assert!(info.has_audio);
}

#[test]
fn frames_writes_one_jpeg_per_frame_and_reports_the_video() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = frames_into("--out-dir", dir.path(), &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("frames: 40"), "{stdout}");
    assert!(stdout.contains("fps:    10.000"), "{stdout}");
    assert!(stdout.contains("size:   640x360"), "{stdout}");
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list frames")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("UTF-8 name")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 40);
    assert_eq!(
        (files[0].as_str(), files[39].as_str()),
        ("frame_000000.jpg", "frame_000039.jpg")
    );
    let bytes = std::fs::read(dir.path().join(&files[5])).expect("read frame");
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
}

#[test]
fn frames_can_scale_limit_and_write_png() {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = ["--format", "png", "--width", "320", "--frames", "4"];
    let out = frames_into("-o", dir.path(), &extra);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list frames")
        .collect();
    assert_eq!(names.len(), 4);
    let png = std::fs::read(dir.path().join("frame_000003.png")).expect("read frame");
    let frame = slblur_client::wire::decode_image(&png).expect("decode PNG");
    assert_eq!((frame.width, frame.height), (320, 180));
}
