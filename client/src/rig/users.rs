//! What a goose user does in a cell.
//!
//! - Closed loop ([`video_user`]): like the original client, sleep the think time before every
//!   frame, send the video's frames in order, one pass (or the budget), then stay finished;
//!   with `--smooth`, each frame carries the faces of the user's last replies as hints.
//! - Open loop ([`arrival_taker`]): goose users are closed-loop, so an open cell runs a pool of
//!   `--max-outstanding` users that take the pre-drawn Poisson arrivals in turn, wait for each
//!   one's intended time and send it. Latency counts from the intended time, so a late send is
//!   measured, not hidden (no coordinated omission); an arrival that no user was free to take
//!   when it was due means every outstanding slot was busy, and it becomes a failed row.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use goose::prelude::*;

use super::CellContext;
use super::exchange::{Outcome, Request, exchange, pause};
use super::smooth::Memory;
use crate::record::{round_ms, timestamp};

/// An arrival taken this much after it was due found every outstanding slot busy. Larger than
/// the scheduling jitter of a busy 2-core machine, far smaller than a request.
const LATE_TOLERANCE: Duration = Duration::from_millis(20);

/// One closed-loop user: think, send the next frame, until its budget, deadline or Ctrl-C.
pub async fn video_user(user: &mut GooseUser, cell: &CellContext) {
    cell.first_user.get_or_init(Instant::now);
    let user_id = cell.share.global_user(user.weighted_users_index);
    let think = Duration::from_secs_f64(cell.load.think_s());
    let frames = cell.workload.frames();
    let started = Instant::now();
    let mut memory = Memory::new(cell.smooth);
    let mut sent: u64 = 0;
    while frames > 0 && cell.budget.requests.is_none_or(|b| sent < b) {
        // Like client.py: the think time comes before every request, the first one too.
        if !pause(think).await {
            break;
        }
        if cell.budget.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let (frame, iteration) = (sent % frames, sent / frames);
        if frame == 0 {
            memory.forget();
        }
        let row = cell.row(user_id, frame, iteration);
        let request = Request {
            body: &cell.workload.bodies[frame as usize],
            hints: &memory.hints(),
        };
        let Some(mut outcome) = exchange(user, cell, request, row, None).await else {
            break;
        };
        memory.remember(std::mem::take(&mut outcome.detected));
        if !(cell.keep_images && user_id == 0 && iteration == 0) {
            outcome.image = None;
        }
        if !cell.report(outcome) {
            break;
        }
        sent += 1;
    }
}

/// One slot of an open-loop cell: take the next arrival, wait for its time, send it.
pub async fn arrival_taker(user: &mut GooseUser, cell: &CellContext) {
    let (start, start_wall) = *cell
        .open_start
        .get_or_init(|| (Instant::now(), SystemTime::now()));
    cell.first_user.get_or_init(|| start);
    let frames = cell.workload.frames();
    loop {
        let taken = cell.next_arrival.fetch_add(1, Ordering::SeqCst);
        let Some(&(number, offset)) = cell.arrivals.get(taken) else {
            break;
        };
        let (frame, iteration) = (number % frames, number / frames);
        // In an open cell a request's number stands where a user id would.
        let mut row = cell.row(number as u32, frame, iteration);
        let (due, due_wall) = (start + offset, start_wall + offset);
        let now = Instant::now();
        if now > due + LATE_TOLERANCE {
            row.intended_at = timestamp(due_wall);
            row.started_at = timestamp(SystemTime::now());
            row.rtt_ms = 0.0;
            row.error = format!(
                "not sent: all {} outstanding requests were busy when it was due (--max-outstanding)",
                cell.max_outstanding
            );
            if !cell.report(Outcome::failed(row)) {
                break;
            }
            continue;
        }
        if !pause(due.saturating_duration_since(now)).await {
            break;
        }
        row.late_ms = Some(round_ms(
            Instant::now().saturating_duration_since(due).as_secs_f64() * 1000.0,
        ));
        let request = Request {
            body: &cell.workload.bodies[frame as usize],
            hints: &[],
        };
        let Some(outcome) = exchange(user, cell, request, row, Some((due, due_wall))).await else {
            break;
        };
        if !cell.report(outcome) {
            break;
        }
    }
}
