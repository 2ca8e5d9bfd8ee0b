//! The original study's grid, one image per user count: rows round trip / handler total / ML
//! time, columns the think times (per target), time against the request index (the frame
//! index for a single pass over the video), one line per user. Failed requests are red crosses
//! in the round-trip row.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::{
    Area, DrawResult, GRID_LINE, Plot, axis_number, colour, font, render, think_times, upper,
};
use crate::report::cells::Sample;
use crate::report::{Analysis, ReportError};

const COL_W: u32 = 330;
const ROW_H: u32 = 230;
const HEADER_H: u32 = 40;

type Metric = (&'static str, fn(&Sample) -> Option<f64>);

const METRICS: [Metric; 3] = [
    ("round trip", |s| Some(s.rtt_ms)),
    ("handler total", |s| s.total_ms),
    ("ML", |s| s.ml_ms),
];

pub fn draw(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    let mut users: Vec<u32> = analysis
        .cells
        .iter()
        .filter(|c| !c.key.is_open())
        .map(|c| c.key.users)
        .collect();
    users.sort_unstable();
    users.dedup();
    let thinks = think_times(analysis);
    let columns: Vec<(String, f64)> = analysis
        .targets
        .iter()
        .flat_map(|t| thinks.iter().map(move |z| (t.clone(), *z)))
        .collect();
    let mut plots = Vec::new();
    for n in users {
        let plot = Plot {
            file: format!("grid_users_{n}.png"),
            title: format!("{n} user(s): time per frame"),
            caption: format!(
                "The original study's grid for {n} concurrent user(s): rows are the round trip, \
                 the handler's total and the ML (detection) time in ms; columns are target and \
                 think time; x is the request index of each user (the frame index for one pass \
                 over the video); one line per user; red crosses are failed requests."
            ),
            width: COL_W * columns.len() as u32,
            height: ROW_H * 3 + HEADER_H,
        };
        plots.push(render(out, plot, |root| {
            draw_grid(analysis, root, n, &columns)
        })?);
    }
    Ok(plots)
}

fn draw_grid(
    analysis: &Analysis,
    root: &Area<'_>,
    users: u32,
    columns: &[(String, f64)],
) -> DrawResult {
    let (header, body) = root.split_vertically(HEADER_H);
    header.titled(&format!("{users} user(s): time per request (ms)"), font(18))?;
    let cell_samples = |target: &str, think: f64| {
        analysis
            .data
            .cells
            .iter()
            .find(|(k, _)| {
                k.target == target && k.users == users && k.think_s == think && !k.is_open()
            })
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[])
    };
    let areas = body.split_evenly((3, columns.len()));
    for (row, (name, value)) in METRICS.iter().enumerate() {
        // One y scale per row across the columns, so think times and targets compare directly.
        let y_max = upper(
            columns
                .iter()
                .flat_map(|(t, z)| {
                    cell_samples(t, *z)
                        .iter()
                        .filter(|s| s.ok)
                        .filter_map(value)
                })
                .fold(0.0, f64::max),
        );
        for (col, (target, think)) in columns.iter().enumerate() {
            let samples = cell_samples(target, *think);
            let area = &areas[row * columns.len() + col];
            let by_user = series_by_user(samples);
            let x_max = by_user.values().map(|v| v.len()).max().unwrap_or(1).max(2) as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{target} · think {think} s · {name}"), font(13))
                .margin(6)
                .x_label_area_size(if row == 2 { 30 } else { 20 })
                .y_label_area_size(50)
                .build_cartesian_2d(-0.5f64..x_max - 0.5, 0f64..y_max)?;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT)
                .bold_line_style(GRID_LINE)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&axis_number);
            mesh.label_style(font(11))
                .axis_desc_style(font(12))
                .y_desc("ms");
            if row == 2 {
                mesh.x_desc("request index");
            }
            mesh.draw()?;
            for (i, requests) in by_user.values().enumerate() {
                let points: Vec<(f64, f64)> = requests
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.ok)
                    .filter_map(|(x, s)| Some((x as f64, value(s)?)))
                    .collect();
                chart.draw_series(LineSeries::new(points, colour(i).stroke_width(1)))?;
                if row == 0 {
                    let failed =
                        requests
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| !s.ok)
                            .map(|(x, s)| {
                                Cross::new(
                                    (x as f64, s.rtt_ms.min(y_max * 0.97)),
                                    4,
                                    RED.stroke_width(2),
                                )
                            });
                    chart.draw_series(failed)?;
                }
            }
        }
    }
    Ok(())
}

/// Each user's requests in sequence order; a user is (run, load worker, user id).
fn series_by_user(samples: &[Sample]) -> BTreeMap<(u32, u32, u32), Vec<&Sample>> {
    let mut by_user: BTreeMap<(u32, u32, u32), Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_user
            .entry((s.run, s.user.0, s.user.1))
            .or_default()
            .push(s);
    }
    for requests in by_user.values_mut() {
        requests.sort_by_key(|s| s.seq);
    }
    by_user
}
