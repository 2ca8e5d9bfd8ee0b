//! `--smooth N`: a closed-loop user's memory of the faces its last N replies detected, sent
//! back as hints (`X-Slblur-Hints`) with its next frame, so a face the detector misses in one
//! frame stays masked when it was seen within N frames. The function keeps no state between
//! requests (any replica may serve the next frame): the memory travels with the requests.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use slblur_protocol::boxes::{self, BoxPx, MAX_HINTS};

/// Boxes overlapping this much (IoU) are taken for the same face: only the newest is sent.
/// The function drops a hint that overlaps a detected face this much, so a face detected
/// again is masked once.
const SAME_FACE: f32 = 0.3;

/// What `--smooth` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smoothing {
    /// Replies remembered (0: no hints are sent).
    pub frames: u32,
    /// Move each remembered box by its face's motion between the two frames before it.
    pub motion: bool,
}

impl Default for Smoothing {
    /// What runs written before `--smooth` existed did.
    fn default() -> Self {
        Smoothing::OFF
    }
}

impl Smoothing {
    pub const OFF: Smoothing = Smoothing {
        frames: 0,
        motion: false,
    };

    /// `run --save-video`'s default: anonymising a video, a face missed for up to two frames
    /// in a row stays masked.
    pub const VIDEO: Smoothing = Smoothing {
        frames: 2,
        motion: true,
    };
}

/// One user's memory: the detected boxes of its last replies, newest first.
#[derive(Debug)]
pub struct Memory {
    smoothing: Smoothing,
    seen: VecDeque<Vec<BoxPx>>,
}

impl Memory {
    pub fn new(smoothing: Smoothing) -> Self {
        Memory {
            smoothing,
            seen: VecDeque::new(),
        }
    }

    /// The hints for the next frame: every face of the remembered replies once, at its newest
    /// box (moved by its motion, if asked), at most [`MAX_HINTS`].
    pub fn hints(&self) -> Vec<BoxPx> {
        let mut newest: Vec<BoxPx> = Vec::new();
        let mut hints: Vec<BoxPx> = Vec::new();
        for (age, faces) in self.seen.iter().enumerate() {
            let before = self.seen.get(age + 1).filter(|_| self.smoothing.motion);
            for &face in faces {
                if hints.len() == MAX_HINTS {
                    return hints;
                }
                if newest.iter().any(|&b| boxes::iou(b, face) >= SAME_FACE) {
                    continue;
                }
                newest.push(face);
                // The reply `age` back answered the frame `age + 1` before the next one.
                let frames_ahead = age as f32 + 1.0;
                hints.push(before.map_or(face, |b| moved(face, b, frames_ahead)));
            }
        }
        hints
    }

    /// Remembers the faces a reply detected (none for a failed request: its frame still
    /// passed).
    pub fn remember(&mut self, detected: Vec<BoxPx>) {
        if self.smoothing.frames == 0 {
            return;
        }
        self.seen.push_front(detected);
        self.seen.truncate(self.smoothing.frames as usize);
    }

    /// Forgets every face (the video starts again: the next frame is another scene).
    pub fn forget(&mut self) {
        self.seen.clear();
    }
}

/// `face` shifted `frames` times by its motion since the frame before, where it was the box
/// of `before` that overlaps it most; unmoved when none overlaps it.
fn moved(face: BoxPx, before: &[BoxPx], frames: f32) -> BoxPx {
    let best = before
        .iter()
        .map(|&b| (boxes::iou(face, b), b))
        .filter(|&(iou, _)| iou > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let Some((_, previous)) = best else {
        return face;
    };
    let center = |b: BoxPx| ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let ((x, y), (px, py)) = (center(face), center(previous));
    let (dx, dy) = ((x - px) * frames, (y - py) * frames);
    [face[0] + dx, face[1] + dy, face[2] + dx, face[3] + dy]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: Smoothing = Smoothing {
        frames: 2,
        motion: false,
    };

    #[test]
    fn a_face_seen_within_n_frames_is_sent_once_at_its_newest_box() {
        let mut memory = Memory::new(ON);
        memory.remember(vec![[10.0, 10.0, 30.0, 30.0]]);
        memory.remember(vec![[12.0, 10.0, 32.0, 30.0], [100.0, 100.0, 120.0, 120.0]]);
        assert_eq!(
            memory.hints(),
            [[12.0, 10.0, 32.0, 30.0], [100.0, 100.0, 120.0, 120.0]]
        );
        // A miss, then another: after two empty replies the faces are forgotten.
        memory.remember(Vec::new());
        assert_eq!(memory.hints().len(), 2);
        memory.remember(Vec::new());
        assert!(memory.hints().is_empty());
        memory.remember(vec![[1.0, 1.0, 5.0, 5.0]]);
        memory.forget();
        assert!(memory.hints().is_empty());
    }

    #[test]
    fn off_remembers_nothing() {
        let mut memory = Memory::new(Smoothing::OFF);
        memory.remember(vec![[10.0, 10.0, 30.0, 30.0]]);
        assert!(memory.hints().is_empty());
    }

    #[test]
    fn motion_moves_a_box_as_far_as_it_moved_per_frame() {
        let mut memory = Memory::new(Smoothing {
            frames: 3,
            motion: true,
        });
        memory.remember(vec![[10.0, 10.0, 30.0, 30.0]]);
        memory.remember(vec![[14.0, 12.0, 34.0, 32.0]]);
        assert_eq!(memory.hints(), [[18.0, 14.0, 38.0, 34.0]]);
        // Missed once: the box two frames back moves twice as far.
        memory.remember(Vec::new());
        assert_eq!(memory.hints(), [[22.0, 16.0, 42.0, 36.0]]);
    }

    #[test]
    fn hints_stay_within_the_limit() {
        let mut memory = Memory::new(ON);
        let many = (0..100)
            .map(|i| {
                let x = i as f32 * 10.0;
                [x, 0.0, x + 5.0, 5.0]
            })
            .collect();
        memory.remember(many);
        assert_eq!(memory.hints().len(), MAX_HINTS);
    }
}
