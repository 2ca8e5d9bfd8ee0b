//! Curves over the load: success rate, mean and median round trip (with 95 % confidence
//! intervals and the model), and throughput against the model, for closed-loop users; and
//! throughput against the offered rate for open-loop cells.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{
    Area, Chart, DrawResult, GRID_LINE, Plot, axis_number, cells_of, colour, draw_legend, font,
    panel_chart, render, target_panels, think_times, upper,
};
use crate::report::{Analysis, CellReport, ReportError};

const PANEL_W: u32 = 520;
const HEIGHT: u32 = 400;

pub fn draw(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    let mut plots = Vec::new();
    let closed = analysis.cells.iter().any(|c| !c.key.is_open());
    let width = PANEL_W * analysis.targets.len().max(1) as u32;
    let plot = |file: &str, title: &str, caption: &str| Plot {
        file: file.to_string(),
        title: title.to_string(),
        caption: caption.to_string(),
        width,
        height: HEIGHT,
    };
    if closed {
        plots.push(render(
            out,
            plot(
                "rtt_vs_users.png",
                "Round trip vs users",
                "Mean round trip (solid, with 95 % confidence intervals as vertical bars) and \
                 median (dashed) of successful requests against concurrent users, one colour \
                 per think time; the model's predicted mean is the thin line with crosses.",
            ),
            |root| per_target(analysis, root, Metric::Rtt),
        )?);
        plots.push(render(
            out,
            plot(
                "throughput_vs_users.png",
                "Throughput vs users",
                "Successful requests per second of wall time against users, one colour per \
                 think time; the thin line with crosses is the model, the grey line its \
                 capacity c/S.",
            ),
            |root| per_target(analysis, root, Metric::Throughput),
        )?);
        plots.push(render(
            out,
            plot(
                "success_vs_users.png",
                "Success rate vs users",
                "Share of requests answered in time with a valid reply (a request past the \
                 timeout is a failure), one line per think time.",
            ),
            |root| per_target(analysis, root, Metric::Success),
        )?);
    }
    if analysis.cells.iter().any(|c| c.key.is_open()) {
        plots.push(render(
            out,
            plot(
                "throughput_vs_rate.png",
                "Open-loop throughput vs offered rate",
                "Measured throughput (solid) and the M/M/c model (crosses) against the offered \
                 Poisson rate; the dashed diagonal is throughput = rate.",
            ),
            |root| open_loop(analysis, root),
        )?);
    }
    Ok(plots)
}

/// What a closed-loop curve shows, and how.
#[derive(Clone, Copy, PartialEq)]
enum Metric {
    Rtt,
    Throughput,
    Success,
}

impl Metric {
    fn y_desc(self) -> &'static str {
        match self {
            Metric::Rtt => "round trip (ms)",
            Metric::Throughput => "requests / s",
            Metric::Success => "success (%)",
        }
    }

    /// Where the legend is least in the way of the curves.
    fn legend(self) -> SeriesLabelPosition {
        match self {
            Metric::Rtt => SeriesLabelPosition::UpperLeft,
            Metric::Throughput => SeriesLabelPosition::LowerRight,
            Metric::Success => SeriesLabelPosition::LowerLeft,
        }
    }

    fn measured(self, c: &CellReport) -> Option<f64> {
        match self {
            Metric::Rtt => Some(c.stats.rtt?.mean),
            Metric::Throughput => Some(c.stats.throughput_rps),
            Metric::Success => Some(c.stats.success_rate * 100.0),
        }
    }

    /// The model's value; the model does not predict the success rate.
    fn predicted(self, c: &CellReport) -> Option<f64> {
        let p = c.prediction?;
        match self {
            Metric::Rtt => p.rtt_ms,
            Metric::Throughput => Some(p.throughput_rps),
            Metric::Success => None,
        }
    }

    /// The top of the y axis: one scale for all panels, so targets compare at a glance.
    fn y_max(self, analysis: &Analysis) -> f64 {
        match self {
            Metric::Success => 105.0,
            Metric::Rtt => upper(
                analysis
                    .cells
                    .iter()
                    .filter(|c| !c.key.is_open())
                    .flat_map(|c| {
                        [
                            c.stats.rtt_ci95.map(|ci| ci.1),
                            c.stats.rtt.map(|d| d.mean.max(d.median)),
                            c.prediction.and_then(|p| p.rtt_ms),
                        ]
                    })
                    .flatten()
                    .fold(0.0, f64::max),
            ),
            Metric::Throughput => upper(max_throughput(analysis.cells.iter())),
        }
    }
}

type Curves<'a, 'b> = Chart<'a, 'b, RangedCoordf64, RangedCoordf64>;

fn per_target(analysis: &Analysis, root: &Area<'_>, metric: Metric) -> DrawResult {
    let thinks = think_times(analysis);
    let max_users = analysis
        .cells
        .iter()
        .map(|c| c.key.users)
        .max()
        .unwrap_or(1);
    let y_max = metric.y_max(analysis);
    for (target, area) in target_panels(root, &analysis.targets) {
        let x_range = 0.5f64..f64::from(max_users) + 0.5;
        let mut chart = panel_chart(&area, &target, x_range.clone(), 0f64..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID_LINE)
            .y_label_formatter(&axis_number)
            .x_desc("users")
            .y_desc(metric.y_desc())
            .x_labels(max_users.min(12) as usize)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(font(12))
            .axis_desc_style(font(13))
            .draw()?;
        let cells: Vec<&CellReport> = cells_of(analysis, &target)
            .filter(|c| !c.key.is_open())
            .collect();
        for (i, think) in thinks.iter().enumerate() {
            let line: Vec<&CellReport> = cells
                .iter()
                .copied()
                .filter(|c| c.key.think_s == *think)
                .collect();
            if !line.is_empty() {
                draw_line(&mut chart, &line, metric, *think, colour(i))?;
            }
        }
        if metric == Metric::Throughput
            && let Some(fit) = analysis.fits.get(&target)
        {
            let capacity = f64::from(fit.servers) / fit.service_ms * 1000.0;
            if capacity < y_max {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x_range.start, capacity), (x_range.end, capacity)],
                    RGBColor(150, 150, 150).stroke_width(1),
                )))?;
            }
        }
        draw_legend(&mut chart, metric.legend())?;
    }
    Ok(())
}

/// One think time's curve over users: measured (solid, dots), for the round trip also the
/// median (dashed) and the 95 % confidence intervals, and the model (thin, crosses).
fn draw_line(
    chart: &mut Curves<'_, '_>,
    line: &[&CellReport],
    metric: Metric,
    think: f64,
    col: RGBColor,
) -> DrawResult {
    let x = |c: &CellReport| f64::from(c.key.users);
    let measured: Vec<(f64, f64)> = line
        .iter()
        .filter_map(|c| Some((x(c), metric.measured(c)?)))
        .collect();
    chart
        .draw_series(LineSeries::new(measured.clone(), col.stroke_width(2)))?
        .label(format!("think {think} s"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    chart.draw_series(measured.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
    if metric == Metric::Rtt {
        let median: Vec<(f64, f64)> = line
            .iter()
            .filter_map(|c| Some((x(c), c.stats.rtt?.median)))
            .collect();
        chart.draw_series(DashedLineSeries::new(median, 6, 4, col.stroke_width(1)))?;
        for c in line {
            if let Some((lo, hi)) = c.stats.rtt_ci95 {
                let (xc, w) = (x(c), 0.08);
                chart.draw_series([
                    PathElement::new(vec![(xc, lo), (xc, hi)], col.stroke_width(1)),
                    PathElement::new(vec![(xc - w, lo), (xc + w, lo)], col.stroke_width(1)),
                    PathElement::new(vec![(xc - w, hi), (xc + w, hi)], col.stroke_width(1)),
                ])?;
            }
        }
    }
    let model: Vec<(f64, f64)> = line
        .iter()
        .filter_map(|c| Some((x(c), metric.predicted(c)?)))
        .collect();
    if !model.is_empty() {
        chart.draw_series(LineSeries::new(model.clone(), col.mix(0.7).stroke_width(1)))?;
        chart.draw_series(model.iter().map(|&p| Cross::new(p, 4, col.stroke_width(1))))?;
    }
    Ok(())
}

fn open_loop(analysis: &Analysis, root: &Area<'_>) -> DrawResult {
    let open: Vec<&CellReport> = analysis.cells.iter().filter(|c| c.key.is_open()).collect();
    let rate_max = upper(
        open.iter()
            .filter_map(|c| c.key.rate_per_s)
            .fold(0.0, f64::max),
    );
    let y_max = upper(max_throughput(open.iter().copied()));
    for (target, area) in target_panels(root, &analysis.targets) {
        let mut chart = panel_chart(&area, &target, 0f64..rate_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID_LINE)
            .y_label_formatter(&axis_number)
            .x_desc("offered rate (requests / s)")
            .y_desc("throughput (requests / s)")
            .label_style(font(12))
            .axis_desc_style(font(13))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (rate_max.min(y_max), rate_max.min(y_max))],
            3,
            5,
            BLACK.mix(0.4).stroke_width(1),
        ))?;
        let cells: Vec<&CellReport> = open
            .iter()
            .copied()
            .filter(|c| c.key.target == target)
            .collect();
        let measured: Vec<(f64, f64)> = cells
            .iter()
            .filter_map(|c| Some((c.key.rate_per_s?, c.stats.throughput_rps)))
            .collect();
        let col = colour(0);
        chart
            .draw_series(LineSeries::new(measured.clone(), col.stroke_width(2)))?
            .label("measured")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
        chart.draw_series(measured.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
        let model: Vec<(f64, f64)> = cells
            .iter()
            .filter_map(|c| Some((c.key.rate_per_s?, c.prediction?.throughput_rps)))
            .collect();
        let model_col = colour(3);
        chart
            .draw_series(
                model
                    .iter()
                    .map(|&p| Cross::new(p, 5, model_col.stroke_width(2))),
            )?
            .label("model (M/M/c)")
            .legend(move |(x, y)| Cross::new((x + 10, y), 5, model_col.stroke_width(2)));
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    Ok(())
}

/// The highest measured or predicted throughput of `cells`: the top of a throughput axis.
fn max_throughput<'a>(cells: impl Iterator<Item = &'a CellReport>) -> f64 {
    cells
        .flat_map(|c| {
            [
                Some(c.stats.throughput_rps),
                c.prediction.map(|p| p.throughput_rps),
            ]
        })
        .flatten()
        .fold(0.0, f64::max)
}
