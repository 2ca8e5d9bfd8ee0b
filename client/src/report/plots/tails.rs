//! The tails per cell: the round trip's median, p95 and p99 with their 95 % confidence
//! intervals (order statistics) as bars, so a reader sees which percentiles a cell can vouch
//! for; a percentile without a bar had too few requests for an interval.

use std::path::Path;

use plotters::prelude::*;

use super::{
    Area, DrawResult, GRID_LINE, Plot, axis_number, cells_of, colour, draw_legend, font,
    most_cells, panel_chart, render, target_panels, upper,
};
use crate::report::cells::QUANTILES;
use crate::report::{Analysis, CellReport, ReportError};

const HEIGHT: u32 = 420;

/// The percentiles drawn, with their offsets within a cell's slot.
const MARKS: [(&str, f64); 3] = [("median", -0.22), ("p95", 0.0), ("p99", 0.22)];

pub fn draw(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    if analysis.cells.iter().all(|c| c.stats.rtt.is_none()) {
        return Ok(Vec::new());
    }
    let panels = analysis.targets.len().max(1) as u32;
    let most_cells = most_cells(analysis);
    let plot = Plot {
        file: "rtt_percentiles.png".to_string(),
        title: "Round-trip percentiles with 95 % confidence intervals".to_string(),
        caption: "Median, p95 and p99 of the successful requests' round trip per cell, each \
                  with its distribution-free 95 % confidence interval (between two order \
                  statistics); a percentile without a bar comes from too few requests for one \
                  (a p99 interval needs 368)."
            .to_string(),
        width: panels * (160 + 70 * most_cells).max(440),
        height: HEIGHT,
    };
    Ok(vec![render(out, plot, |root| percentiles(analysis, root))?])
}

/// A percentile's value and its 95 % confidence interval, where known.
type Point = (Option<f64>, Option<(f64, f64)>);

/// The three percentiles of a cell.
fn points(cell: &CellReport) -> [Point; 3] {
    let d = cell.stats.rtt;
    let values = [d.map(|d| d.median), d.map(|d| d.p95), d.map(|d| d.p99)];
    std::array::from_fn(|k| (values[k], cell.stats.rtt_quantile_ci95[k]))
}

fn percentiles(analysis: &Analysis, root: &Area<'_>) -> DrawResult {
    let y_max = upper(
        analysis
            .cells
            .iter()
            .flat_map(|c| points(c).into_iter())
            .flat_map(|(v, ci)| [v, ci.map(|c| c.1)])
            .flatten()
            .fold(0.0, f64::max),
    );
    debug_assert_eq!(MARKS.len(), QUANTILES.len());
    for (target, area) in target_panels(root, &analysis.targets) {
        let cells: Vec<&CellReport> = cells_of(analysis, &target).collect();
        let labels: Vec<String> = cells.iter().map(|c| c.key.load_label()).collect();
        let n = cells.len().max(1) as f64;
        let mut chart = panel_chart(&area, &target, -0.5..n - 0.5, 0f64..y_max)?;
        let label_of = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID_LINE)
            .disable_x_mesh()
            .x_labels(cells.len().max(1) + 1)
            .x_label_formatter(&label_of)
            .y_label_formatter(&axis_number)
            .y_desc("round trip (ms)")
            .label_style(font(11))
            .axis_desc_style(font(13))
            .draw()?;
        for (k, (name, offset)) in MARKS.iter().enumerate() {
            let col = colour(k * 3);
            let mut marks = Vec::new();
            for (i, cell) in cells.iter().enumerate() {
                let (value, interval) = points(cell)[k];
                let Some(value) = value else { continue };
                let x = i as f64 + offset;
                marks.push((x, value));
                if let Some((lo, hi)) = interval {
                    chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                        x,
                        lo,
                        value,
                        hi,
                        col.stroke_width(2),
                        8,
                    )))?;
                }
            }
            chart
                .draw_series(marks.iter().map(|&p| Circle::new(p, 4, col.filled())))?
                .label(*name)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, col.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}
