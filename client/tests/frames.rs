//! `frames`: decoding the sample video into image files.

mod common;

use common::{client_plain, sample_video, text};
use slblur_client::savevideo::count_frames;
use slblur_client::video::{DecodeOptions, decode};

#[test]
fn sample_video_has_40_frames_at_10_fps_with_audio() {
    assert_eq!(count_frames(&sample_video()).unwrap(), 40);
    let info = decode(&sample_video(), DecodeOptions::default(), |_, f| {
        assert_eq!(f.data.len(), 640 * 360 * 3);
        Ok(())
    })
    .unwrap();
    assert_eq!((info.width, info.height, info.frames), (640, 360, 40));
    assert_eq!(info.fps(), 10.0);
    assert!(info.has_audio);
}

#[test]
fn frames_writes_one_jpeg_per_frame_and_reports_the_video() {
    let dir = tempfile::tempdir().unwrap();
    let out = client_plain(&[
        "frames",
        "--video",
        sample_video().to_str().unwrap(),
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("frames: 40"), "{stdout}");
    assert!(stdout.contains("fps:    10.000"), "{stdout}");
    assert!(stdout.contains("size:   640x360"), "{stdout}");
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 40);
    assert_eq!(
        (files[0].as_str(), files[39].as_str()),
        ("frame_000000.jpg", "frame_000039.jpg")
    );
    let bytes = std::fs::read(dir.path().join(&files[5])).unwrap();
    assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
}

#[test]
fn frames_can_scale_limit_and_write_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = client_plain(&[
        "frames",
        "--video",
        sample_video().to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
        "--format",
        "png",
        "--width",
        "320",
        "--frames",
        "4",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 4);
    let frame = slblur_client::wire::decode_image(
        &std::fs::read(dir.path().join("frame_000003.png")).unwrap(),
    )
    .unwrap();
    assert_eq!((frame.width, frame.height), (320, 180));
}
