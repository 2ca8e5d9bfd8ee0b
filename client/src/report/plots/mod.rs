//! The report's PNG plots, drawn with plotters into a memory buffer and encoded as PNG.
//!
//! Text uses a DejaVu Sans subset compiled into the binary (`client/assets/fonts`), registered
//! with plotters' `ab_glyph` backend, so drawing needs no fontconfig and no installed font.
//! With several targets, every plot has one panel per target side by side.

mod bars;
mod cdf;
mod curves;
mod grid;
mod tails;
mod timeline;

use std::error::Error;
use std::path::Path;
use std::sync::Once;

use image::ExtendedColorType;
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use plotters::coord::Shift;
use plotters::coord::ranged1d::AsRangedCoord;
use plotters::prelude::*;

use super::{Analysis, CellReport, ReportError};

/// The embedded font (see `client/assets/fonts/README.md` for origin and licence).
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-subset.ttf");

/// A drawn plot, for `index.html`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// File name inside the report folder.
    pub file: String,
    pub title: String,
    /// How to read it.
    pub caption: String,
    pub width: u32,
    pub height: u32,
}

/// Axis grid lines: light, so data stands out (and PNGs compress well).
const GRID_LINE: RGBColor = RGBColor(228, 228, 228);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b, X, Y> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, Y>>;
type DrawResult = Result<(), Box<dyn Error>>;

/// Draws every plot the data allows; returns them in reading order.
pub fn draw_all(analysis: &Analysis, out: &Path) -> Result<Vec<Plot>, ReportError> {
    register_font();
    let mut plots = Vec::new();
    plots.extend(curves::draw(analysis, out)?);
    plots.extend(grid::draw(analysis, out)?);
    plots.extend(cdf::draw(analysis, out)?);
    plots.extend(tails::draw(analysis, out)?);
    plots.extend(bars::draw(analysis, out)?);
    plots.extend(timeline::draw(analysis, out)?);
    Ok(plots)
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and checked by the tests; a failure would show as missing text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws into a white `width` × `height` canvas and writes it to `out/file` as PNG.
fn render(
    out: &Path,
    plot: Plot,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<Plot, ReportError> {
    let path = out.join(&plot.file);
    let plot_err = |source: Box<dyn Error + Send + Sync>| ReportError::Plot {
        path: path.clone(),
        source,
    };
    let mut buffer = vec![0u8; plot.width as usize * plot.height as usize * 3];
    {
        let root =
            BitMapBackend::with_buffer(&mut buffer, (plot.width, plot.height)).into_drawing_area();
        // plotters' errors borrow the backend: keep their text.
        root.fill(&WHITE)
            .map_err(|e| plot_err(e.to_string().into()))?;
        draw(&root).map_err(|e| plot_err(e.to_string().into()))?;
        root.present().map_err(|e| plot_err(e.to_string().into()))?;
    }
    let file = std::fs::File::create(&path).map_err(|e| plot_err(e.into()))?;
    PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Best,
        FilterType::Adaptive,
    )
    .write_image(&buffer, plot.width, plot.height, ExtendedColorType::Rgb8)
    .map_err(|e| plot_err(e.into()))?;
    Ok(plot)
}

/// One panel per target, side by side, each titled with the target's name.
fn target_panels<'a>(root: &Area<'a>, targets: &[String]) -> Vec<(String, Area<'a>)> {
    let panels = root.split_evenly((1, targets.len().max(1)));
    targets.iter().cloned().zip(panels).collect()
}

/// A target's panel: its name as the caption, room for tick labels, the given axes.
fn panel_chart<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    area: &'a Area<'b>,
    target: &str,
    x: X,
    y: Y,
) -> Result<Chart<'a, 'b, X::CoordDescType, Y::CoordDescType>, Box<dyn Error>> {
    Ok(ChartBuilder::on(area)
        .caption(target, font(16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x, y)?)
}

/// The cells of one target, closed-loop first.
fn cells_of<'a>(analysis: &'a Analysis, target: &str) -> impl Iterator<Item = &'a CellReport> {
    analysis
        .cells
        .iter()
        .filter(move |c| c.key.target == target)
}

/// The most cells any one target has (for a panel's width).
fn most_cells(analysis: &Analysis) -> u32 {
    analysis
        .targets
        .iter()
        .map(|t| cells_of(analysis, t).count())
        .max()
        .unwrap_or(1) as u32
}

/// Think times of the closed-loop cells, ascending.
fn think_times(analysis: &Analysis) -> Vec<f64> {
    let mut t: Vec<f64> = analysis
        .cells
        .iter()
        .filter(|c| !c.key.is_open())
        .map(|c| c.key.think_s)
        .collect();
    t.sort_by(f64::total_cmp);
    t.dedup();
    t
}

fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 128),
        RGBColor(0, 0, 0),
    ];
    COLOURS[i % COLOURS.len()]
}

fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// Axis tick text: as many decimals as the magnitude needs (450, 2.5, 0.25).
fn axis_number(v: &f64) -> String {
    match v.abs() {
        a if a >= 10.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// An upper axis bound with headroom; 1 for empty or zero data.
fn upper(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.08
    } else {
        1.0
    }
}

fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(12))
        .position(position)
        .draw()?;
    Ok(())
}
