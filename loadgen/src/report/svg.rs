//! Hand-written SVG latency-by-percentile plots: x axis in "nines" (log scale of
//! 1/(1 − p): 0 %, 90 %, 99 %, 99.9 % …), y axis latency, one line per run.

use std::fmt::Write;

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const W: f64 = 860.0;
const H: f64 = 500.0;
const L: f64 = 80.0;
const R: f64 = 200.0;
const T: f64 = 50.0;
const B: f64 = 60.0;

fn nines(pct: f64) -> f64 {
    -(1.0 - (pct / 100.0).min(0.999_999_9)).log10()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" axis step for a range of `span`.
fn step(span: f64) -> f64 {
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Plots `series` (label, [[percentile, latency_us]]) on one chart.
pub fn plot(title: &str, series: &[(String, Vec<[f64; 2]>)]) -> String {
    // The last point of a curve is its maximum (100 %): draw it one half-nine past the
    // curve's last finite percentile.
    let mut max_x: f64 = 2.0;
    let mut max_y: f64 = 0.0;
    let curves: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, pts)| {
            let mut out: Vec<(f64, f64)> = Vec::new();
            for p in pts {
                let x = if p[0] >= 100.0 {
                    out.last().map_or(0.0, |l| l.0 + 0.5)
                } else {
                    nines(p[0])
                };
                out.push((x, p[1]));
                max_y = max_y.max(p[1]);
            }
            if let Some(l) = out.last() {
                max_x = max_x.max(l.0);
            }
            out
        })
        .collect();
    let max_x = max_x.ceil();
    let min_y = curves
        .iter()
        .flatten()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    // Tails usually dwarf the body: past a 50x spread the y axis goes logarithmic.
    let log = min_y.is_finite() && max_y / min_y > 50.0;
    let (unit, div) = if max_y >= 10_000.0 && !log {
        ("ms", 1000.0)
    } else {
        ("µs", 1.0)
    };
    let y_top_raw = (max_y / div).max(1e-3) * 1.05;
    let ystep = step(y_top_raw);
    let y_top = (y_top_raw / ystep).ceil() * ystep;
    let (lo_exp, hi_exp) = if log {
        (
            min_y.log10().floor(),
            max_y.log10().ceil().max(min_y.log10().floor() + 1.0),
        )
    } else {
        (0.0, 1.0)
    };
    let frac = |y: f64| {
        if log {
            ((y.max(10f64.powf(lo_exp))).log10() - lo_exp) / (hi_exp - lo_exp)
        } else {
            (y / div) / y_top
        }
    };
    let px = |x: f64| L + x / max_x * (W - L - R);
    let py = |y: f64| H - B - frac(y) * (H - T - B);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"#,
        (W - R + L) / 2.0,
        esc(title)
    );
    for k in 0..=(max_x as usize) {
        let x = px(k as f64);
        let label = match k {
            0 => "0%".to_string(),
            k => format!("{}%", 100.0 - 100.0 / 10f64.powi(k as i32)),
        };
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{}" stroke="#ddd"/>"##,
            H - B
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            H - B + 18.0
        );
    }
    let ticks: Vec<(f64, String)> = if log {
        (lo_exp as i32..=hi_exp as i32)
            .map(|e| {
                let v = 10f64.powi(e);
                let label = if v < 1000.0 {
                    format!("{}µs", trim(v))
                } else if v < 1e6 {
                    format!("{}ms", trim(v / 1e3))
                } else {
                    format!("{}s", trim(v / 1e6))
                };
                (v, label)
            })
            .collect()
    } else {
        let mut t = Vec::new();
        let mut y = 0.0;
        while y <= y_top + 1e-9 {
            t.push((y * div, trim(y)));
            y += ystep;
        }
        t
    };
    for (v, label) in &ticks {
        let yy = py(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{L}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/>"##,
            W - R
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            L - 6.0,
            yy + 4.0,
            label
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        W - L - R,
        H - T - B
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        (W - R + L) / 2.0,
        H - 18.0
    );
    let axis = if log {
        "latency (log scale)".to_string()
    } else {
        format!("latency ({unit})")
    };
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{}) rotate(-90)" text-anchor="middle">{axis}</text>"#,
        (H - B + T) / 2.0
    );
    for (i, (c, (label, _))) in curves.iter().zip(series).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = c
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let ly = T + 14.0 + i as f64 * 20.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/>"#,
            W - R + 12.0,
            W - R + 36.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            W - R + 42.0,
            ly + 4.0,
            esc(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn trim(v: f64) -> String {
    let t = format!("{v:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn plot_has_one_line_per_series_and_escapes_labels() {
        let curve = vec![[0.0, 10.0], [90.0, 20.0], [99.0, 50.0], [100.0, 80.0]];
        let svg = super::plot("t", &[("a<b".into(), curve.clone()), ("c".into(), curve)]);
        assert!(
            svg.contains("latency (µs)"),
            "a small spread keeps a linear axis"
        );
        let tail = vec![[0.0, 10.0], [99.0, 50.0], [100.0, 100_000.0]];
        assert!(super::plot("t", &[("x".into(), tail)]).contains("latency (log scale)"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains(">99%<"));
    }
}
