//! Which faces each frame holds: the detector's boxes linked across frames into tracks, and
//! the boxes a track passes through in the frames where the detector missed it (up to
//! `max_gap` frames in a row, between two frames where it found the face), interpolated.
//! A box found in one frame only is never carried to its neighbours: noise makes the
//! detector see a face for one frame, and such a box is no face left unmasked next to it.

use slblur_protocol::boxes::BoxPx;

/// A detection joins a track when its centre is within this share of the face's size of
/// where the track's motion puts it, per frame of distance.
const REACH_PER_FRAME: f32 = 0.5;

/// Nor when its area is more than this many times the track's, or less than its inverse.
const MAX_AREA_RATIO: f32 = 2.0;

/// Where a face expected in a frame comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    /// The detector found it in this frame.
    Detected,
    /// Missed here, found in frames `before` and `after`: the box is interpolated.
    Between { before: u64, after: u64 },
}

/// One face expected in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    pub track: usize,
    pub seen: Seen,
    pub face: BoxPx,
}

/// One face followed through the video: its detections, by frame.
#[derive(Debug)]
struct Track {
    found: Vec<(u64, BoxPx)>,
}

impl Track {
    /// Where the face would be in `frame`, from its last two detections' motion.
    fn predict(&self, frame: u64) -> (u64, BoxPx) {
        let &(last, b) = self.found.last().expect("a track has a detection");
        let ahead = (frame - last) as f32;
        let velocity = match self.found.len() {
            n if n >= 2 => {
                let (k, a) = self.found[n - 2];
                let (now, then) = (centre(b), centre(a));
                let frames = (last - k) as f32;
                ((now.0 - then.0) / frames, (now.1 - then.1) / frames)
            }
            _ => (0.0, 0.0),
        };
        let (dx, dy) = (velocity.0 * ahead, velocity.1 * ahead);
        (last, [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy])
    }

    /// How far (in face sizes per frame) `face` in `frame` is from this track's prediction;
    /// `None` when it cannot be this face.
    fn distance(&self, frame: u64, face: BoxPx, max_gap: u32) -> Option<f32> {
        let (last, predicted) = self.predict(frame);
        let apart = frame
            .checked_sub(last)
            .filter(|&d| d >= 1 && d <= u64::from(max_gap) + 1)?;
        let ratio = area(face) / area(predicted);
        if !(1.0 / MAX_AREA_RATIO..=MAX_AREA_RATIO).contains(&ratio) {
            return None;
        }
        let (a, b) = (centre(face), centre(predicted));
        let size = (face[2] - face[0]).max(face[3] - face[1]);
        let off = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt() / size / apart as f32;
        (off <= REACH_PER_FRAME).then_some(off)
    }
}

fn centre(b: BoxPx) -> (f32, f32) {
    ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
}

fn area(b: BoxPx) -> f32 {
    ((b[2] - b[0]) * (b[3] - b[1])).max(f32::MIN_POSITIVE)
}

/// The faces each frame is expected to hold, from the detections of every frame (`faces[i]`
/// for frame i): each detection, and each track's interpolated box in the gaps of at most
/// `max_gap` frames between two of its detections.
pub fn expected(faces: &[Vec<BoxPx>], max_gap: u32) -> Vec<Vec<Expected>> {
    let tracks = link(faces, max_gap);
    let mut expected: Vec<Vec<Expected>> = vec![Vec::new(); faces.len()];
    for (track, t) in tracks.iter().enumerate() {
        for pair in t.found.windows(2) {
            let ((k, a), (j, b)) = (pair[0], pair[1]);
            for i in k + 1..j {
                let s = (i - k) as f32 / (j - k) as f32;
                let face = std::array::from_fn(|c| a[c] + (b[c] - a[c]) * s);
                let seen = Seen::Between {
                    before: k,
                    after: j,
                };
                expected[i as usize].push(Expected { track, seen, face });
            }
        }
        for &(i, face) in &t.found {
            let seen = Seen::Detected;
            expected[i as usize].push(Expected { track, seen, face });
        }
    }
    expected
}

/// Links the detections into tracks, frame by frame: each detection joins the nearest track
/// that can reach it (one detection per track and frame), or starts a new one.
fn link(faces: &[Vec<BoxPx>], max_gap: u32) -> Vec<Track> {
    let mut tracks: Vec<Track> = Vec::new();
    for (frame, found) in faces.iter().enumerate() {
        let frame = frame as u64;
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, &face) in found.iter().enumerate() {
            for (t, track) in tracks.iter().enumerate() {
                if let Some(off) = track.distance(frame, face, max_gap) {
                    pairs.push((off, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut joined = vec![false; found.len()];
        let mut taken = vec![false; tracks.len()];
        for (_, t, d) in pairs {
            if !joined[d] && !taken[t] {
                tracks[t].found.push((frame, found[d]));
                (joined[d], taken[t]) = (true, true);
            }
        }
        for (d, &face) in found.iter().enumerate() {
            if !joined[d] {
                tracks.push(Track {
                    found: vec![(frame, face)],
                });
            }
        }
    }
    tracks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f32) -> BoxPx {
        [x, 10.0, x + 25.0, 40.0]
    }

    #[test]
    fn a_fast_face_missed_in_one_frame_is_expected_there_between_its_neighbours() {
        // A 25 px face moving 13 px a frame, missed in frame 3; a one-frame false
        // detection in frame 3 elsewhere.
        let faces = vec![
            vec![at(100.0)],
            vec![at(113.0)],
            vec![at(126.0)],
            vec![[300.0, 300.0, 330.0, 330.0]],
            vec![at(152.0)],
        ];
        let expected = expected(&faces, 2);
        let missed: Vec<&Expected> = expected[3]
            .iter()
            .filter(|e| e.seen != Seen::Detected)
            .collect();
        assert_eq!(missed.len(), 1, "{expected:?}");
        assert_eq!(
            missed[0].seen,
            Seen::Between {
                before: 2,
                after: 4
            }
        );
        assert_eq!(missed[0].face, at(139.0));
        // The false detection is expected in its own frame only.
        assert!(
            expected
                .iter()
                .enumerate()
                .all(|(i, e)| e.len() == if i == 3 { 2 } else { 1 })
        );
    }

    #[test]
    fn gaps_longer_than_allowed_and_other_faces_start_new_tracks() {
        let faces = vec![vec![at(0.0)], vec![], vec![], vec![at(0.0)]];
        assert!(
            expected(&faces, 1)[1].is_empty(),
            "a gap of 2 is longer than 1"
        );
        assert_eq!(expected(&faces, 2)[1].len(), 1);
        // A face four times the size at the same place is another face.
        let faces = vec![vec![at(0.0)], vec![], vec![[0.0, 10.0, 50.0, 70.0]]];
        assert!(expected(&faces, 2)[1].is_empty());
    }

    #[test]
    fn two_faces_keep_their_own_tracks() {
        let faces = vec![
            vec![at(0.0), at(200.0)],
            vec![at(190.0)],
            vec![at(20.0), at(180.0)],
        ];
        let expected = expected(&faces, 2);
        assert_eq!(expected[1].len(), 2);
        let between = expected[1]
            .iter()
            .find(|e| e.seen != Seen::Detected)
            .expect("gap");
        assert_eq!(between.face, at(10.0));
    }
}
