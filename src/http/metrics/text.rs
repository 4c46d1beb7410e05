//! The Prometheus text exposition format (version 0.0.4), written by hand: a family's
//! `# HELP` and `# TYPE` lines, then its samples with escaped label values; histograms as
//! cumulative `_bucket` lines with `le`, then `_sum` and `_count`.

use std::fmt::{Display, Write};

/// The content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family read off a value of type `T`: its name, its help and how to read a sample.
pub type Read<T, V> = (&'static str, &'static str, fn(&T) -> V);

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// An exposition being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: every sample of `name` must follow before the next family.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's samples: `buckets` are (upper bound, count in that bucket alone) in
    /// increasing order, the last one unbounded (`None`); they are written cumulative.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (Option<f64>, u64)>,
        sum: f64,
    ) {
        let mut cumulative = 0;
        for (le, n) in buckets {
            cumulative += n;
            let le = le.map_or_else(|| "+Inf".to_string(), |v| v.to_string());
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {sum}");
        let _ = write!(self.out, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {cumulative}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"");
            escape(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_histograms_are_written_in_the_text_format() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "Things.\nMore");
        e.sample("x_total", &[("a", "q\"u\\o\nte")], 3);
        e.sample("x_total", &[], 4);
        e.family("h", Kind::Histogram, "A histogram.");
        e.histogram(
            "h",
            &[("s", "0")],
            [(Some(0.5), 1), (Some(1.0), 2), (None, 0)],
            1.5,
        );
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things.\\nMore\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"u\\\\o\\nte\"} 3\nx_total 4\n\
             # HELP h A histogram.\n# TYPE h histogram\n\
             h_bucket{s=\"0\",le=\"0.5\"} 1\nh_bucket{s=\"0\",le=\"1\"} 3\n\
             h_bucket{s=\"0\",le=\"+Inf\"} 3\nh_sum{s=\"0\"} 1.5\nh_count{s=\"0\"} 3\n"
        );
    }
}
