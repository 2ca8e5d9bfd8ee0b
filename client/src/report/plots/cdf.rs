//! Latency CDFs: for each cell, the share of successful requests whose round trip is at most
//! x, on a logarithmic x axis so fast and slow cells fit one picture.

use std::path::Path;

use plotters::prelude::*;

use super::{
    Area, DrawResult, GRID_LINE, Plot, axis_number, colour, draw_legend, font, panel_chart, render,
    target_panels,
};
use crate::report::{Analysis, ReportError};

const PANEL_W: u32 = 560;
const HEIGHT: u32 = 420;

pub fn draw(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    let plot = Plot {
        file: "rtt_cdf.png".to_string(),
        title: "Round-trip CDF per cell".to_string(),
        caption: "Cumulative share of successful requests (y) with a round trip up to x ms \
                  (log scale), one line per cell: a line further right is slower, a flatter \
                  line more variable."
            .to_string(),
        width: PANEL_W * analysis.targets.len().max(1) as u32,
        height: HEIGHT,
    };
    Ok(vec![render(out, plot, |root| draw_cdfs(analysis, root))?])
}

fn draw_cdfs(analysis: &Analysis, root: &Area<'_>) -> DrawResult {
    let all_ok = || {
        analysis
            .data
            .cells
            .values()
            .flatten()
            .filter(|s| s.ok && s.rtt_ms > 0.0)
            .map(|s| s.rtt_ms)
    };
    let lo = all_ok().fold(f64::INFINITY, f64::min);
    let hi = all_ok().fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo * 0.9, hi * 1.1)
    } else {
        (1.0, 1000.0)
    };
    for (target, area) in target_panels(root, &analysis.targets) {
        let mut chart = panel_chart(&area, &target, (lo..hi).log_scale(), 0f64..1.02)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID_LINE)
            .y_label_formatter(&axis_number)
            .x_desc("round trip (ms, log scale)")
            .y_desc("share of requests")
            .x_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(font(12))
            .axis_desc_style(font(13))
            .draw()?;
        let cells = analysis
            .data
            .cells
            .iter()
            .filter(|(k, _)| k.target == target);
        for (i, (key, samples)) in cells.enumerate() {
            let mut rtt: Vec<f64> = samples
                .iter()
                .filter(|s| s.ok && s.rtt_ms > 0.0)
                .map(|s| s.rtt_ms)
                .collect();
            if rtt.is_empty() {
                continue;
            }
            rtt.sort_by(f64::total_cmp);
            let n = rtt.len() as f64;
            // A step function: each value lifts the share by 1/n.
            let mut points = Vec::with_capacity(rtt.len() * 2);
            for (j, v) in rtt.iter().enumerate() {
                points.push((*v, j as f64 / n));
                points.push((*v, (j + 1) as f64 / n));
            }
            let col = colour(i);
            chart
                .draw_series(LineSeries::new(points, col.stroke_width(2)))?
                .label(key.load_label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    Ok(())
}
