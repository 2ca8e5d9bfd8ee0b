//! Leakage of an anonymised video: where a face is left unmasked in the output. The faces come
//! from the function itself, run on the original's frames, and are linked across frames
//! ([`tracks`]): a face the detector missed for a few frames between two frames where it found
//! it is expected there too, at the box between (the single-frame misses that temporal
//! smoothing is for). Each expected face is judged masked or not by comparing the output with
//! the original inside its box ([`judge`]).

pub mod judge;
pub mod tracks;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Serialize;
use slblur_protocol::Wire;
use slblur_protocol::boxes::BoxPx;

use crate::progress::Progress;
use crate::token::Token;
use crate::video::RgbFrame;
use crate::wire::{self, RequestBody};
use tracks::{Expected, Seen};

/// What counts as a leak.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// A face missed for at most this many frames in a row, between frames where it was
    /// found, is expected in those frames.
    pub max_gap: u32,
    /// A face that kept at least this share of the original (both measures of
    /// [`judge::Judgement`]) is unmasked.
    pub kept_above: f64,
}

/// One face looked for in one output frame: a row of the `--out` CSV.
#[derive(Debug, Clone, Serialize)]
pub struct Looked {
    pub frame: u64,
    /// The face's number (its track through the video).
    pub face: usize,
    /// `detected` in this frame, or `between A B`: missed here, found in frames A and B.
    pub seen: String,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub detail_kept: f64,
    pub like_original: f64,
    pub unmasked: bool,
}

/// What the check found.
#[derive(Debug, Default, Serialize)]
pub struct Leaks {
    pub frames: u64,
    /// Faces judged (a face counts once per frame it is expected in).
    pub faces_checked: u64,
    /// Of those, faces the detector missed in their frame (expected between two detections).
    pub faces_missed: u64,
    /// Faces whose box was too flat to judge.
    pub faces_unjudged: u64,
    pub unmasked_faces: u64,
    /// Output frames with at least one unmasked face, in order.
    pub leaked_frames: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write '{path}'")]
pub struct LeaksFileError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The CSV of every face looked for, written as frames are checked.
pub struct LeaksFile {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl LeaksFile {
    pub fn create(path: &Path) -> Result<Self, LeaksFileError> {
        let err = |source| LeaksFileError {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(err)?;
        Ok(LeaksFile {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(file),
        })
    }

    fn write(&mut self, looked: &Looked) -> Result<(), LeaksFileError> {
        let err = |source| LeaksFileError {
            path: self.path.clone(),
            source,
        };
        self.writer
            .serialize(looked)
            .map_err(|e| err(std::io::Error::other(e)))?;
        self.writer.flush().map_err(err)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FacesError {
    #[error("frame {frame}: {text}")]
    Refused { frame: usize, text: String },
    #[error("frame {frame}: no answer from {url}")]
    Unanswered {
        frame: usize,
        url: Url,
        #[source]
        source: reqwest::Error,
    },
}

/// The faces the function finds in each frame (binary requests, one at a time).
pub async fn find_faces(
    url: &Url,
    token: Option<&Token>,
    timeout: std::time::Duration,
    bodies: &[RequestBody],
    progress: &Progress,
) -> Result<Vec<Vec<BoxPx>>, FacesError> {
    let client = reqwest::Client::new();
    let mut faces = Vec::with_capacity(bodies.len());
    for (frame, body) in bodies.iter().enumerate() {
        let unanswered = |source| FacesError::Unanswered {
            frame,
            url: url.clone(),
            source,
        };
        let mut request = client
            .post(url.clone())
            .timeout(timeout)
            .body(body.bytes.clone());
        if let Some(ct) = body.content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(token) = token {
            request = request.header(reqwest::header::AUTHORIZATION, token.header_value().clone());
        }
        let response = request.send().await.map_err(unanswered)?;
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.map_err(unanswered)?;
        let refused = |text| FacesError::Refused { frame, text };
        if !status.is_success() {
            return Err(refused(wire::error_text(status, &headers, &bytes)));
        }
        let reply = wire::parse_reply(Wire::Binary, &headers, &bytes).map_err(refused)?;
        faces.push(reply.detected().to_vec());
        progress.step();
    }
    Ok(faces)
}

/// Checks output frames one by one against the originals and the faces expected in each.
pub struct Checker {
    check: Check,
    /// The faces expected in each frame.
    expected: Vec<Vec<Expected>>,
    file: Option<LeaksFile>,
    pub leaks: Leaks,
}

impl Checker {
    /// `faces[i]`: the faces the detector found in original frame i.
    pub fn new(check: Check, faces: &[Vec<BoxPx>], file: Option<LeaksFile>) -> Self {
        Checker {
            check,
            expected: tracks::expected(faces, check.max_gap),
            file,
            leaks: Leaks::default(),
        }
    }

    /// Looks for the faces expected in frame `index` in its output; the faces left unmasked.
    pub fn frame(
        &mut self,
        index: u64,
        original: &RgbFrame,
        output: &RgbFrame,
    ) -> Result<Vec<Looked>, LeaksFileError> {
        self.leaks.frames += 1;
        let expected = self
            .expected
            .get(index as usize)
            .cloned()
            .unwrap_or_default();
        let mut unmasked = Vec::new();
        for e in expected {
            let Some(judged) = judge::judge(original, output, e.face) else {
                self.leaks.faces_unjudged += 1;
                continue;
            };
            let round = |v: f64| (v * 1000.0).round() / 1000.0;
            let looked = Looked {
                frame: index,
                face: e.track,
                seen: match e.seen {
                    Seen::Detected => "detected".into(),
                    Seen::Between { before, after } => format!("between {before} {after}"),
                },
                x1: e.face[0].round(),
                y1: e.face[1].round(),
                x2: e.face[2].round(),
                y2: e.face[3].round(),
                detail_kept: round(judged.detail_kept),
                like_original: round(judged.like_original),
                unmasked: judged.unmasked(self.check.kept_above),
            };
            self.leaks.faces_checked += 1;
            if e.seen != Seen::Detected {
                self.leaks.faces_missed += 1;
            }
            if let Some(file) = &mut self.file {
                file.write(&looked)?;
            }
            if looked.unmasked {
                unmasked.push(looked);
            }
        }
        if !unmasked.is_empty() {
            self.leaks.unmasked_faces += unmasked.len() as u64;
            self.leaks.leaked_frames.push(index);
        }
        Ok(unmasked)
    }
}

/// The result as one JSON line (the last line on stdout).
pub fn json_line(leaks: &Leaks) -> String {
    serde_json::to_string(leaks).unwrap_or_default()
}

/// The result for people: the counts, then the frames with an unmasked face.
pub fn summary(leaks: &Leaks) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} frames, {} faces checked ({} of them where the detector missed them; {} more too flat to judge): {} unmasked in {} frames",
        leaks.frames,
        leaks.faces_checked,
        leaks.faces_missed,
        leaks.faces_unjudged,
        leaks.unmasked_faces,
        leaks.leaked_frames.len()
    );
    if !leaks.leaked_frames.is_empty() {
        let list: Vec<String> = leaks.leaked_frames.iter().map(u64::to_string).collect();
        let _ = writeln!(text, "frames with an unmasked face: {}", list.join(", "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::judge::tests::{changed, textured};
    use super::*;

    #[test]
    fn a_face_missed_in_one_frame_and_left_unmasked_is_a_leak() {
        let original = textured(96, 48);
        // The detector found the face in frames 0 and 2, not in 1, and the output did not
        // mask it in frame 1.
        let faces = vec![
            vec![[10.0, 10.0, 30.0, 30.0]],
            vec![],
            vec![[14.0, 10.0, 34.0, 30.0]],
        ];
        let check = Check {
            max_gap: 2,
            kept_above: 0.5,
        };
        let mut checker = Checker::new(check, &faces, None);
        let masked = changed(&original, [4.0, 4.0, 40.0, 36.0], |_, _, _| 120);
        assert!(
            checker
                .frame(0, &original, &masked)
                .expect("no file")
                .is_empty()
        );
        let leaked = checker.frame(1, &original, &original).expect("no file");
        assert_eq!(leaked.len(), 1);
        assert_eq!(leaked[0].seen, "between 0 2");
        assert_eq!([leaked[0].x1, leaked[0].x2], [12.0, 32.0]);
        assert!(
            checker
                .frame(2, &original, &masked)
                .expect("no file")
                .is_empty()
        );
        assert_eq!(checker.leaks.leaked_frames, [1]);
        assert_eq!(
            (
                checker.leaks.faces_checked,
                checker.leaks.faces_missed,
                checker.leaks.unmasked_faces
            ),
            (3, 1, 1)
        );
    }
}
