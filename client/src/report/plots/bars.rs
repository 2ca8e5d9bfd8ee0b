//! Bar charts: the round trip taken apart per cell (network + gateway, queue, other handler
//! work, ML), cold against warm requests, and requests per instance when several replicas
//! answered.

use std::path::Path;

use std::error::Error;

use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordusize};
use plotters::prelude::*;

use super::{
    Area, Chart, DrawResult, GRID_LINE, Plot, axis_number, cells_of, colour, draw_legend, font,
    most_cells, panel_chart, render, target_panels, upper,
};
use crate::report::cells::{Sample, mean};
use crate::report::{Analysis, CellReport, ReportError};

const HEIGHT: u32 = 420;

pub fn draw(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    let panels = analysis.targets.len().max(1) as u32;
    let most_cells = most_cells(analysis);
    let mut plots = Vec::new();
    if analysis.cells.iter().any(|c| c.stats.breakdown.is_some()) {
        let plot = Plot {
            file: "rtt_breakdown.png".to_string(),
            title: "Where the round trip goes".to_string(),
            caption: "Mean round trip of successful requests per cell, stacked: network, client \
                      and gateway (round trip − handler total), queue wait, other handler work \
                      (decode, blur, encode: total − ML − queue) and ML (face detection)."
                .to_string(),
            width: panels * (160 + 55 * most_cells).max(420),
            height: HEIGHT,
        };
        plots.push(render(out, plot, |root| breakdown(analysis, root))?);
    }
    if analysis.cells.iter().any(|c| c.stats.cold > 0) {
        let plot = Plot {
            file: "cold_vs_warm.png".to_string(),
            title: "Cold and warm requests".to_string(),
            caption: "Mean round trip of successful cold requests (an instance's first) and warm \
                      ones, per target, with their counts; cold requests are kept out of the \
                      model fit."
                .to_string(),
            width: panels * 360,
            height: HEIGHT,
        };
        plots.push(render(out, plot, |root| cold_warm(analysis, root))?);
    }
    if analysis
        .cells
        .iter()
        .any(|c| c.stats.per_instance.len() > 1)
    {
        let most = analysis.data.instances.len().max(1) as u32;
        let plot = Plot {
            file: "requests_per_instance.png".to_string(),
            title: "Requests per instance".to_string(),
            caption: "How many requests each replica answered, per target: an even spread means \
                      the load balancer shared the load."
                .to_string(),
            width: panels * (160 + 70 * most).max(420),
            height: HEIGHT,
        };
        plots.push(render(out, plot, |root| per_instance(analysis, root))?);
    }
    Ok(plots)
}

/// A target's bar chart, one segment per label, its axes drawn with the labels under the bars.
fn bar_panel<'a, 'b>(
    area: &'a Area<'b>,
    target: &str,
    labels: &[String],
    y_max: f64,
    x_desc: &str,
    y_desc: &str,
) -> Result<BarChart<'a, 'b>, Box<dyn Error>> {
    // plotters' integer ranges include their end: 0..n-1 has n segments. A one-segment axis
    // collapses, so a single bar gets an empty neighbour.
    let segments = (0..labels.len().max(2) - 1).into_segmented();
    let mut chart = panel_chart(area, target, segments, 0f64..y_max)?;
    let label_of = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID_LINE)
        .y_label_formatter(&axis_number)
        .disable_x_mesh()
        .x_labels(labels.len().max(1))
        .x_label_formatter(&label_of)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(font(11))
        .axis_desc_style(font(13))
        .draw()?;
    Ok(chart)
}

type BarChart<'a, 'b> = Chart<'a, 'b, SegmentedCoord<RangedCoordusize>, RangedCoordf64>;

/// The parts of the breakdown, bottom to top.
const PARTS: [(&str, RGBColor); 5] = [
    ("ML", RGBColor(44, 160, 44)),
    ("other handler work", RGBColor(31, 119, 180)),
    ("queue", RGBColor(255, 127, 14)),
    ("network + gateway", RGBColor(150, 150, 150)),
    ("async queue + callback", RGBColor(148, 103, 189)),
];

fn breakdown(analysis: &Analysis, root: &Area<'_>) -> DrawResult {
    let y_max = upper(
        analysis
            .cells
            .iter()
            .filter_map(|c| c.stats.breakdown)
            .map(|b| {
                b.network_ms.max(0.0)
                    + b.async_queue_ms
                    + b.queue_ms
                    + b.handler_other_ms.max(0.0)
                    + b.ml_ms
            })
            .fold(0.0, f64::max),
    );
    for (target, area) in target_panels(root, &analysis.targets) {
        let cells: Vec<&CellReport> = cells_of(analysis, &target).collect();
        let labels: Vec<String> = cells.iter().map(|c| c.key.load_label()).collect();
        let mut chart = bar_panel(
            &area,
            &target,
            &labels,
            y_max,
            "cell (users, think)",
            "mean round trip (ms)",
        )?;
        for (i, cell) in cells.iter().enumerate() {
            let Some(b) = cell.stats.breakdown else {
                continue;
            };
            let heights = [
                b.ml_ms,
                b.handler_other_ms.max(0.0),
                b.queue_ms,
                b.network_ms.max(0.0),
                b.async_queue_ms,
            ];
            let mut bottom = 0.0;
            for (height, (_, col)) in heights.iter().zip(PARTS) {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), bottom),
                        (SegmentValue::Exact(i + 1), bottom + height),
                    ],
                    col.filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                chart.draw_series(std::iter::once(bar))?;
                bottom += height;
            }
        }
        for (name, col) in PARTS.iter().rev() {
            chart
                .draw_series(std::iter::empty::<Rectangle<(SegmentValue<usize>, f64)>>())?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], col.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}

fn cold_warm(analysis: &Analysis, root: &Area<'_>) -> DrawResult {
    // Means over every successful request of a target, cold and warm apart.
    let groups = |target: &str| -> [(String, Option<f64>); 2] {
        let (cold, warm): (Vec<&Sample>, Vec<&Sample>) = analysis
            .data
            .cells
            .iter()
            .filter(|(k, _)| k.target == target)
            .flat_map(|(_, s)| s.iter().filter(|s| s.ok))
            .partition(|s| s.cold);
        let mean_rtt = |v: &[&Sample]| mean(&v.iter().map(|s| s.rtt_ms).collect::<Vec<_>>());
        [
            (format!("warm (n = {})", warm.len()), mean_rtt(&warm)),
            (format!("cold (n = {})", cold.len()), mean_rtt(&cold)),
        ]
    };
    let y_max = upper(
        analysis
            .targets
            .iter()
            .flat_map(|t| groups(t).into_iter().filter_map(|g| g.1))
            .fold(0.0, f64::max),
    );
    for (target, area) in target_panels(root, &analysis.targets) {
        labelled_bars(
            &area,
            &target,
            &groups(&target),
            y_max,
            "mean round trip (ms)",
            |i| colour(i * 3),
        )?;
    }
    Ok(())
}

/// One bar per (label, value); a `None` value leaves its slot empty.
fn labelled_bars(
    area: &Area<'_>,
    target: &str,
    bars: &[(String, Option<f64>)],
    y_max: f64,
    y_desc: &str,
    colour_of: impl Fn(usize) -> RGBColor,
) -> DrawResult {
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = bar_panel(area, target, &labels, y_max, "", y_desc)?;
    for (i, (_, value)) in bars.iter().enumerate() {
        if let Some(v) = value {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                colour_of(i).filled(),
            );
            let margin = if bars.len() <= 2 { 25 } else { 10 };
            bar.set_margin(0, 0, margin, margin);
            chart.draw_series(std::iter::once(bar))?;
        }
    }
    Ok(())
}

fn per_instance(analysis: &Analysis, root: &Area<'_>) -> DrawResult {
    let counts = |target: &str| -> Vec<(String, Option<f64>)> {
        let mut totals = std::collections::BTreeMap::<u32, u64>::new();
        for cell in cells_of(analysis, target) {
            for (i, n) in &cell.stats.per_instance {
                *totals.entry(*i).or_insert(0) += n;
            }
        }
        totals
            .into_iter()
            .map(|(i, n)| {
                let name = analysis
                    .data
                    .instances
                    .get(i as usize)
                    .map_or("?", String::as_str);
                (name.chars().take(18).collect(), Some(n as f64))
            })
            .collect()
    };
    let y_max = upper(
        analysis
            .targets
            .iter()
            .flat_map(|t| counts(t).into_iter().filter_map(|c| c.1))
            .fold(0.0, f64::max),
    );
    for (target, area) in target_panels(root, &analysis.targets) {
        labelled_bars(&area, &target, &counts(&target), y_max, "requests", |_| {
            colour(0)
        })?;
    }
    Ok(())
}
