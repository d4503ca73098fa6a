//! The report's charts, drawn with plotters into SVG strings that the HTML holds
//! inline (no network, no script). SVG text is laid out by the browser, so no font
//! files are needed.

use plotters::prelude::*;

use super::tally::Counts;

/// The colour of the `index`-th configuration.
pub fn colour(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    PALETTE[index % PALETTE.len()]
}

/// The colour as CSS.
pub fn css(index: usize) -> String {
    let RGBColor(r, g, b) = colour(index);
    format!("rgb({r},{g},{b})")
}

const SIZE: (u32, u32) = (760, 340);

type Drawn = Result<(), String>;

/// A bar of the totals chart: its name and how to read it.
type Metric = (&'static str, fn(&Counts) -> u64);

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {e}")
}

/// What each configuration did, side by side: closes, warnings, pushes, rescues,
/// and the closed chats the end user came back to.
pub fn totals(labels: &[String], counts: &[Counts]) -> Result<String, String> {
    let metrics: [Metric; 5] = [
        ("closed", |c| c.closed),
        ("warnings", |c| c.warnings),
        ("pushes", |c| c.pushes),
        ("rescued", |c| c.rescued),
        ("came back", |c| c.came_back),
    ];
    let max = counts
        .iter()
        .flat_map(|c| metrics.iter().map(move |(_, f)| f(c)))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    let drawn: Drawn = (|| {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("What each configuration did", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..metrics.len() as f64, 0u64..(max + max / 10 + 1))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(metrics.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                let centred = (x - x.floor() - 0.5).abs() < 0.01;
                match metrics.get(i) {
                    Some((name, _)) if centred => (*name).to_owned(),
                    _ => String::new(),
                }
            })
            .y_desc("chats")
            .draw()
            .map_err(err)?;
        let width = 0.8 / counts.len().max(1) as f64;
        for (c, (label, counts)) in labels.iter().zip(counts).enumerate() {
            let colour = colour(c);
            chart
                .draw_series(metrics.iter().enumerate().map(|(m, (_, value))| {
                    let x0 = m as f64 + 0.1 + width * c as f64;
                    Rectangle::new([(x0, 0), (x0 + width, value(counts))], colour.filled())
                }))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    })();
    drawn.map(|()| svg)
}

/// How long after the last agent message each configuration closed: closes per
/// minute of delay.
pub fn close_delays(labels: &[String], delays_ms: &[Vec<u64>]) -> Result<String, String> {
    let minutes: Vec<Vec<u64>> = delays_ms
        .iter()
        .map(|delays| {
            let top = delays.iter().map(|d| d / 60_000).max().unwrap_or(0) as usize;
            let mut counts = vec![0u64; top + 1];
            for d in delays {
                counts[(d / 60_000) as usize] += 1;
            }
            counts
        })
        .collect();
    let width = minutes.iter().map(Vec::len).max().unwrap_or(1).max(1) as u64;
    let max = minutes.iter().flatten().copied().max().unwrap_or(0).max(1);
    series_chart(
        "Time from the last agent message to the close",
        "minutes after the last agent message",
        labels,
        0..width + 1,
        max,
        minutes
            .iter()
            .map(|m| m.iter().enumerate().map(|(i, n)| (i as u64, *n)).collect())
            .collect(),
    )
}

/// Closes by hour of day, per configuration.
pub fn closes_by_hour(labels: &[String], hours: &[[u64; 24]]) -> Result<String, String> {
    let max = hours.iter().flatten().copied().max().unwrap_or(0).max(1);
    series_chart(
        "Closes by hour of day (UTC of the log)",
        "hour",
        labels,
        0..24,
        max,
        hours
            .iter()
            .map(|h| h.iter().enumerate().map(|(i, n)| (i as u64, *n)).collect())
            .collect(),
    )
}

fn series_chart(
    caption: &str,
    x_desc: &str,
    labels: &[String],
    x: std::ops::Range<u64>,
    max: u64,
    series: Vec<Vec<(u64, u64)>>,
) -> Result<String, String> {
    let mut svg = String::new();
    let drawn: Drawn = (|| {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x, 0u64..(max + max / 10 + 1))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("closes")
            .draw()
            .map_err(err)?;
        for (c, (label, points)) in labels.iter().zip(series).enumerate() {
            let colour = colour(c);
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    })();
    drawn.map(|()| svg)
}
