//! Progress bar and failure notices on stderr, drawn only when stdout is a terminal, so piped
//! output (JMeter, CI, `> file`) stays clean and ends with the JSON line.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::Row;

/// Failure lines printed per cell before the rest are only counted.
const MAX_NOTICES: u64 = 5;

pub struct Progress {
    bar: ProgressBar,
    visible: bool,
    notices: AtomicU64,
}

impl Progress {
    /// A bar for one cell; `total` requests if known. Hidden unless `enabled` and stdout is a tty.
    pub fn new(enabled: bool, label: &str, total: Option<u64>) -> Self {
        let visible = enabled && std::io::stdout().is_terminal();
        // The target is set at creation: switching it later leaves the first drawn line behind.
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(total, target);
        let template = if total.is_some() {
            "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({elapsed}, eta {eta})"
        } else {
            "{prefix} {spinner} {pos} requests {msg} ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        if visible {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Self {
            bar,
            visible,
            notices: AtomicU64::new(0),
        }
    }

    /// Counts a finished request; failures are also printed (the first few per cell).
    pub fn record(&self, row: &Row, ok: u64, failed: u64) {
        self.bar.inc(1);
        self.bar
            .set_message(format!("ok {ok} failed {failed} last {:.0} ms", row.rtt_ms));
        if row.ok {
            return;
        }
        let n = self.notices.fetch_add(1, Ordering::Relaxed);
        if n < MAX_NOTICES {
            self.println(&format!(
                "user {} frame {}: {}",
                row.user_id, row.frame, row.error
            ));
        } else if n == MAX_NOTICES {
            self.println("further failures in this cell are only counted (see the CSV)");
        }
    }

    /// Counts one step of work that is not a request row.
    pub fn step(&self) {
        self.bar.inc(1);
    }

    /// Prints a line above the bar (or plainly to stderr when the bar is hidden).
    pub fn println(&self, line: &str) {
        if self.visible {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
