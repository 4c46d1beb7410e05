//! Key-choice distributions for the HTTP workloads: `uniform`, `zipf:S` (rank 1 = key 0
//! is the most popular) and `hot:P%[:H%]` (P % of the operations go to the first H % of
//! the key space, 1 % when H is not given; the rest are uniform over the other keys).

use crate::rng::Rng;
use anyhow::{bail, Context, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum KeyDist {
    Uniform,
    Zipf(f64),
    Hot { ops_pct: f64, keys_pct: f64 },
}

impl KeyDist {
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t == "uniform" {
            return Ok(KeyDist::Uniform);
        }
        if let Some(s) = t.strip_prefix("zipf:") {
            let s: f64 = s.parse().with_context(|| {
                format!("--dist {text}: zipf exponent must be a number, e.g. zipf:0.99")
            })?;
            if !(s > 0.0 && s.is_finite()) {
                bail!("--dist {text}: zipf exponent must be > 0");
            }
            return Ok(KeyDist::Zipf(s));
        }
        if let Some(rest) = t.strip_prefix("hot:") {
            let mut parts = rest.split(':');
            let pct = |p: Option<&str>, what: &str| -> Result<Option<f64>> {
                match p {
                    None => Ok(None),
                    Some(p) => {
                        let v: f64 = p.trim_end_matches('%').parse().with_context(|| {
                            format!("--dist {text}: {what} must be a percentage, e.g. hot:90%:1%")
                        })?;
                        if !(v > 0.0 && v <= 100.0) {
                            bail!("--dist {text}: {what} must be in (0, 100]");
                        }
                        Ok(Some(v))
                    }
                }
            };
            let ops_pct = pct(parts.next(), "the share of operations")?.unwrap_or(90.0);
            let keys_pct = pct(parts.next(), "the share of keys")?.unwrap_or(1.0);
            if parts.next().is_some() {
                bail!("--dist {text}: expected hot:P% or hot:P%:H%");
            }
            return Ok(KeyDist::Hot { ops_pct, keys_pct });
        }
        bail!("--dist {text}: expected uniform, zipf:S or hot:P%[:H%]")
    }
}

/// A ready-to-sample chooser over keys `0..n`.
#[derive(Clone, Debug)]
pub struct KeyChooser {
    n: u64,
    kind: Chooser,
}

#[derive(Clone, Debug)]
enum Chooser {
    Uniform,
    /// Rejection-inversion sampler (Hörmann & Derflinger 1996), as in `rand_distr::Zipf`.
    Zipf {
        s: f64,
        t: f64,
        q: f64,
    },
    Hot {
        ops: f64,
        hot_n: u64,
    },
}

impl KeyChooser {
    pub fn new(dist: &KeyDist, n: u64) -> Self {
        let n = n.max(1);
        let kind = match *dist {
            KeyDist::Uniform => Chooser::Uniform,
            KeyDist::Zipf(s) => {
                let nf = n as f64;
                let q = if s != 1.0 { 1.0 / (1.0 - s) } else { 0.0 };
                let t = if s != 1.0 {
                    (nf.powf(1.0 - s) - s) * q
                } else {
                    1.0 + nf.ln()
                };
                Chooser::Zipf { s, t, q }
            }
            KeyDist::Hot { ops_pct, keys_pct } => {
                let hot_n = ((n as f64 * keys_pct / 100.0).round() as u64).clamp(1, n);
                Chooser::Hot {
                    ops: ops_pct / 100.0,
                    hot_n,
                }
            }
        };
        KeyChooser { n, kind }
    }

    #[inline]
    pub fn next(&self, rng: &mut Rng) -> u64 {
        match self.kind {
            Chooser::Uniform => rng.below(self.n),
            Chooser::Zipf { s, t, q } => loop {
                let pt = rng.unit() * t;
                let inv_b = if pt <= 1.0 {
                    pt
                } else if s != 1.0 {
                    (pt * (1.0 - s) + s).powf(q)
                } else {
                    (pt - 1.0).exp()
                };
                let x = (inv_b + 1.0).floor();
                let mut ratio = x.powf(-s);
                if x > 1.0 {
                    ratio *= inv_b.powf(s);
                }
                if rng.unit() < ratio {
                    return (x as u64).clamp(1, self.n) - 1;
                }
            },
            Chooser::Hot { ops, hot_n } => {
                if hot_n >= self.n || rng.unit() < ops {
                    rng.below(hot_n)
                } else {
                    hot_n + rng.below(self.n - hot_n)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(d: &str, n: u64, draws: usize) -> Vec<u64> {
        let c = KeyChooser::new(&KeyDist::parse(d).unwrap(), n);
        let mut r = Rng::new(1);
        let mut h = vec![0u64; n as usize];
        for _ in 0..draws {
            h[c.next(&mut r) as usize] += 1;
        }
        h
    }

    #[test]
    fn zipf_favours_low_ranks_and_stays_in_range() {
        let h = histogram("zipf:0.99", 1000, 100_000);
        assert!(h[0] > h[10] && h[10] > h[500]);
        assert_eq!(h.iter().sum::<u64>(), 100_000);
    }

    #[test]
    fn hot_sends_the_given_share_to_the_hot_set() {
        let h = histogram("hot:90%:10%", 100, 100_000);
        let hot: u64 = h[..10].iter().sum();
        assert!((85_000..95_000).contains(&hot), "hot share {hot}");
    }

    #[test]
    fn bad_distributions_are_named() {
        for bad in ["zipf:x", "hot:200%", "gauss", "zipf:-1"] {
            let e = KeyDist::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
