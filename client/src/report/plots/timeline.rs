//! Timelines of the open-loop cells whose rate changes (bursts, ramps, traces): arrivals per
//! second against time above the round trip of every request against its intended time (cold
//! requests and failures marked), with each window's measured mean and the model's prediction
//! from the window's rate alone.

use std::path::Path;

use plotters::prelude::*;

use super::{DrawResult, GRID_LINE, Plot, axis_number, colour, draw_legend, font, render, upper};
use crate::report::cells::Sample;
use crate::report::windows::CellWindows;
use crate::report::{Analysis, ReportError};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 620;

/// Timelines drawn at most (one file each).
const MOST: usize = 12;

/// Arrival-count bars at most across the timeline (bins widen past that).
const MOST_BINS: f64 = 400.0;

pub fn draw(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    let mut plots = Vec::new();
    for (i, cell) in analysis.windows.iter().take(MOST).enumerate() {
        let Some(samples) = analysis.data.cells.get(&cell.key) else {
            continue;
        };
        let plot = Plot {
            file: format!("timeline_{}.png", i + 1),
            title: format!(
                "{} {}: arrivals and round trip over time",
                cell.key.target,
                cell.key.load_label()
            ),
            caption: format!(
                "Top: requests arriving per second (by intended time). Bottom: each request's \
                 round trip at its intended time (blue; cold requests orange, failures red \
                 crosses), the measured mean per {} s window (black) and the open-system \
                 model's prediction from the window's rate alone (green, dashed; red bands: past \
                 capacity, no steady state).",
                cell.width_s
            ),
            width: WIDTH,
            height: HEIGHT,
        };
        plots.push(render(out, plot, |root| timeline(cell, samples, root))?);
    }
    Ok(plots)
}

fn timeline(cell: &CellWindows, samples: &[Sample], root: &super::Area<'_>) -> DrawResult {
    let at = |s: &Sample| (s.start_ms - cell.t0_ms) / 1000.0;
    let end = samples.iter().map(at).fold(cell.width_s, f64::max);
    let (top, bottom) = root.split_vertically(HEIGHT * 2 / 5);
    // Arrivals per second, in bins of at least a second.
    let bin = (end / MOST_BINS).max(1.0).ceil();
    let mut counts = vec![0u64; (end / bin) as usize + 1];
    samples
        .iter()
        .for_each(|s| counts[(at(s) / bin) as usize] += 1);
    let rate_max = upper(counts.iter().map(|&c| c as f64 / bin).fold(0.0, f64::max));
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{} {}", cell.key.target, cell.key.load_label()),
            font(16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..end, 0f64..rate_max)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID_LINE)
        .y_desc("arrivals per second")
        .y_label_formatter(&axis_number)
        .label_style(font(11))
        .axis_desc_style(font(13))
        .draw()?;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x = i as f64 * bin;
        Rectangle::new(
            [(x, 0.0), (x + bin, c as f64 / bin)],
            colour(0).mix(0.6).filled(),
        )
    }))?;
    latency(cell, samples, &bottom, end)
}

fn latency(cell: &CellWindows, samples: &[Sample], area: &super::Area<'_>, end: f64) -> DrawResult {
    let at = |s: &Sample| (s.start_ms - cell.t0_ms) / 1000.0;
    let y_max = upper(samples.iter().map(|s| s.rtt_ms).fold(0.0, f64::max));
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..end, 0f64..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID_LINE)
        .x_desc("seconds from the cell's first arrival")
        .y_desc("round trip (ms)")
        .x_label_formatter(&axis_number)
        .y_label_formatter(&axis_number)
        .label_style(font(11))
        .axis_desc_style(font(13))
        .draw()?;
    let w = cell.width_s;
    for window in cell.windows.iter().filter(|w| w.unstable) {
        let x = window.start_s;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x, 0.0), (x + w, y_max)],
            RED.mix(0.08).filled(),
        )))?;
    }
    let ok = samples.iter().filter(|s| s.ok && !s.cold);
    chart
        .draw_series(ok.map(|s| Circle::new((at(s), s.rtt_ms), 2, colour(0).mix(0.5).filled())))?
        .label("request")
        .legend(|(x, y)| Circle::new((x + 7, y), 3, colour(0).filled()));
    let cold = samples.iter().filter(|s| s.ok && s.cold);
    chart
        .draw_series(cold.map(|s| Circle::new((at(s), s.rtt_ms), 4, colour(1).filled())))?
        .label("cold")
        .legend(|(x, y)| Circle::new((x + 7, y), 4, colour(1).filled()));
    let failed = samples.iter().filter(|s| !s.ok);
    chart
        .draw_series(
            failed.map(|s| Cross::new((at(s), s.rtt_ms.min(y_max)), 4, RED.stroke_width(1))),
        )?
        .label("failed")
        .legend(|(x, y)| Cross::new((x + 7, y), 4, RED.stroke_width(1)));
    let steps =
        |value: &dyn Fn(&crate::report::windows::Window) -> Option<f64>| -> Vec<Vec<(f64, f64)>> {
            // Consecutive windows with a value form one stepped line; a gap breaks it.
            let mut lines: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for window in &cell.windows {
                match value(window) {
                    Some(v) => {
                        let line = lines.last_mut().expect("one line at least");
                        line.extend([(window.start_s, v), (window.start_s + w, v)]);
                    }
                    None if !lines.last().is_some_and(Vec::is_empty) => lines.push(Vec::new()),
                    None => {}
                }
            }
            lines
        };
    for (k, line) in steps(&|win| win.measured_rtt_ms).into_iter().enumerate() {
        let series = chart.draw_series(LineSeries::new(line, BLACK.stroke_width(2)))?;
        if k == 0 {
            series.label("measured mean per window").legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2))
            });
        }
    }
    let model = colour(2);
    for (k, line) in steps(&|win| win.predicted_rtt_ms.map(|p| p.min(y_max)))
        .into_iter()
        .enumerate()
    {
        let series = chart.draw_series(DashedLineSeries::new(line, 8, 5, model.stroke_width(2)))?;
        if k == 0 {
            series
                .label("model from the window's rate")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], model.stroke_width(2))
                });
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}
