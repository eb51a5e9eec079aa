//! The situation's charts, drawn as SVG with plotters (no font files: the browser sets the
//! text), and the way its figures are written: the analytics report and the web console's
//! situation page draw the same pictures from the same figures.

use petition_proto::v1 as pb;
use plotters::prelude::*;

const BLUE: RGBColor = RGBColor(31, 95, 168);
const RED: RGBColor = RGBColor(192, 57, 43);
const GREY: RGBColor = RGBColor(120, 120, 120);

/// Drawing failed; plotters' reason, for the log.
#[derive(Debug, thiserror::Error)]
#[error("drawing a chart failed: {0}")]
pub struct ChartError(String);

/// A share as a percentage with one decimal.
pub fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A rate as its percentage and its fraction, "87.5% (7/8)", or "—" without a denominator.
pub fn rate(r: &Option<pb::Rate>) -> String {
    match r {
        Some(pb::Rate {
            numerator,
            denominator,
            value: Some(v),
        }) => format!("{} ({numerator}/{denominator})", pct(*v)),
        _ => "—".into(),
    }
}

/// "+12.5%" against a base, or "—" when the base is zero.
pub fn change(now: u64, base: u64) -> String {
    if base == 0 {
        "—".into()
    } else {
        let d = (now as f64 - base as f64) / base as f64;
        format!("{}{:.1}%", if d >= 0.0 { "+" } else { "" }, d * 100.0)
    }
}

type Drawn = Result<String, ChartError>;

fn chart_error<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

/// Monthly cases and online cases, as lines.
pub fn trend(points: &[pb::TrendPoint]) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let max = points.iter().map(|p| p.cases).max().unwrap_or(0).max(1) as f64 * 1.1;
        let n = points.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..(n as f64 - 0.5), 0f64..max)
            .map_err(chart_error)?;
        let labels: Vec<String> = points.iter().map(|p| p.month[2..].to_owned()).collect();
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round() as usize;
                labels.get(i).cloned().unwrap_or_default()
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i as f64, p.cases as f64)),
                BLUE.stroke_width(3),
            ))
            .map_err(chart_error)?
            .label("件次")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i as f64, p.online as f64)),
                RED.stroke_width(2),
            ))
            .map_err(chart_error)?
            .label("网上信访")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Horizontal bars, one per share, with its label and count.
pub fn bars(shares: &[pb::Share]) -> Drawn {
    let mut svg = String::new();
    let rows = shares.len().max(1);
    let height = 24 * rows as u32 + 24;
    {
        let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let max = shares.iter().map(|s| s.cases).max().unwrap_or(1).max(1) as i32;
        let label_w = 230;
        let bar_w = 760 - label_w - 120;
        for (i, s) in shares.iter().enumerate() {
            let y = 12 + 24 * i as i32;
            let w = (s.cases as f64 / max as f64 * bar_w as f64).round() as i32;
            root.draw(&Text::new(
                s.label.clone(),
                (8, y + 4),
                ("sans-serif", 14).into_font().color(&BLACK),
            ))
            .map_err(chart_error)?;
            root.draw(&Rectangle::new(
                [(label_w, y), (label_w + w.max(1), y + 18)],
                BLUE.filled(),
            ))
            .map_err(chart_error)?;
            root.draw(&Text::new(
                format!("{} ({})", s.cases, pct(s.share)),
                (label_w + w + 6, y + 4),
                ("sans-serif", 13).into_font().color(&GREY),
            ))
            .map_err(chart_error)?;
        }
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// A map-like grid of places: one tile per problem location, darker for more cases.
pub fn grid(shares: &[pb::Share]) -> Drawn {
    let mut svg = String::new();
    let cols = 4usize;
    let rows = shares.len().div_ceil(cols).max(1);
    {
        let root = SVGBackend::with_string(&mut svg, (760, 90 * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let max = shares.iter().map(|s| s.cases).max().unwrap_or(1).max(1) as f64;
        let tiles = root.split_evenly((rows, cols));
        for (tile, s) in tiles.iter().zip(shares) {
            let t = s.cases as f64 / max;
            let shade = RGBColor(
                (235.0 - 200.0 * t) as u8,
                (242.0 - 150.0 * t) as u8,
                (250.0 - 90.0 * t) as u8,
            );
            let (w, h) = tile.dim_in_pixel();
            tile.draw(&Rectangle::new(
                [(3, 3), (w as i32 - 3, h as i32 - 3)],
                shade.filled(),
            ))
            .map_err(chart_error)?;
            let ink = if t > 0.55 { WHITE } else { BLACK };
            tile.draw(&Text::new(
                s.label.clone(),
                (12, 16),
                ("sans-serif", 14).into_font().color(&ink),
            ))
            .map_err(chart_error)?;
            tile.draw(&Text::new(
                format!("{} 件", s.cases),
                (12, 44),
                ("sans-serif", 20).into_font().color(&ink),
            ))
            .map_err(chart_error)?;
        }
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}
