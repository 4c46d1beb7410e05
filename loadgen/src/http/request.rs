//! What the HTTP workers send: the target URL, the operation mix, and the request bytes
//! for each operation (GET/PUT/POST/DELETE /{Table}/..., query GETs, or one fixed path),
//! written into a reusable buffer without per-request allocation.

use crate::dist::KeyChooser;
use crate::rng::Rng;
use anyhow::{bail, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    Post,
    Delete,
    Query,
    Path,
}

/// Weighted operation mix, e.g. `get=90,put=10`.
#[derive(Clone, Debug)]
pub struct Mix {
    cumulative: Vec<(u64, Op)>,
    total: u64,
}

impl Mix {
    pub fn parse(text: &str) -> Result<Self> {
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = part
                .split_once('=')
                .with_context(|| format!("--mix {text}: '{part}' should look like get=90"))?;
            let op = match name.trim() {
                "get" => Op::Get,
                "put" => Op::Put,
                "post" => Op::Post,
                "delete" => Op::Delete,
                "query" => Op::Query,
                other => bail!(
                    "--mix {text}: unknown operation '{other}' (get, put, post, delete, query)"
                ),
            };
            let w: u64 = w.trim().parse().with_context(|| {
                format!("--mix {text}: weight of '{part}' is not a whole number")
            })?;
            if w > 0 {
                total += w;
                cumulative.push((total, op));
            }
        }
        if total == 0 {
            bail!("--mix {text}: no operation has a weight above 0");
        }
        Ok(Mix { cumulative, total })
    }

    #[inline]
    pub fn pick(&self, rng: &mut Rng) -> Op {
        if self.cumulative.len() == 1 {
            return self.cumulative[0].1;
        }
        let x = rng.below(self.total);
        self.cumulative
            .iter()
            .find(|(c, _)| x < *c)
            .map(|(_, op)| *op)
            .unwrap_or(Op::Get)
    }
}

/// `http://host:port[/base]`, split for connecting and for request lines.
#[derive(Clone, Debug)]
pub struct Url {
    pub authority: String,
    /// Base path without its trailing slash ("" for none).
    pub path: String,
    /// The path exactly as given, if any (`http://h:1/` gives "/").
    pub given_path: Option<String>,
}

impl Url {
    pub fn parse(url: &str) -> Result<Self> {
        if url.starts_with("https://") {
            bail!("--url {url}: https is not supported (plain HTTP/1.1 only)");
        }
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            bail!("--url {url}: no host");
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let given_path = if path.is_empty() {
            None
        } else {
            Some(path.to_string())
        };
        Ok(Url {
            authority,
            path: path.trim_end_matches('/').to_string(),
            given_path,
        })
    }
}

/// Static parts shared by all workers.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Common header lines (Host, extra headers, auth), each ending in CRLF.
    pub headers: Vec<u8>,
    /// `{base}/{Table}/` for table workloads.
    pub table_path: Vec<u8>,
    /// Full request for `--path` mode.
    pub fixed: Option<Vec<u8>>,
    /// Full requests for `--paths-file` mode, one chosen at random per request.
    pub paths: Vec<Vec<u8>>,
    pub key_prefix: Vec<u8>,
    pub value_bytes: usize,
    pub categories: u64,
    /// Query template split around `{cat}`/`{id}` placeholders.
    pub query: Vec<QueryPart>,
}

#[derive(Clone, Debug)]
pub enum QueryPart {
    Text(Vec<u8>),
    Cat,
    Id,
}

pub fn split_query(template: &str) -> Vec<QueryPart> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i..];
        let (ph, len) = if tail.starts_with("{cat}") {
            (Some(QueryPart::Cat), 5)
        } else if tail.starts_with("{id}") {
            (Some(QueryPart::Id), 4)
        } else {
            (None, 1)
        };
        let keep = i + usize::from(ph.is_none());
        parts.push(QueryPart::Text(rest.as_bytes()[..keep].to_vec()));
        if let Some(p) = ph {
            parts.push(p);
        }
        rest = &rest[i + len..];
    }
    parts.push(QueryPart::Text(rest.as_bytes().to_vec()));
    parts
}

#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Per-worker request writer: picks operation and key, appends the request to `out`.
pub struct RequestGen {
    shape: std::sync::Arc<Shape>,
    mix: Mix,
    keys: KeyChooser,
    pub rng: Rng,
    pad: Vec<u8>,
    body: Vec<u8>,
}

impl RequestGen {
    pub fn new(shape: std::sync::Arc<Shape>, mix: Mix, keys: KeyChooser, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let pad = (0..shape.value_bytes + 64)
            .map(|_| b'a' + rng.below(26) as u8)
            .collect();
        RequestGen {
            shape,
            mix,
            keys,
            rng,
            pad,
            body: Vec::with_capacity(256),
        }
    }

    /// Appends the next workload request; returns its operation.
    pub fn next(&mut self, out: &mut Vec<u8>) -> Op {
        if let Some(fixed) = &self.shape.fixed {
            out.extend_from_slice(fixed);
            return Op::Path;
        }
        if !self.shape.paths.is_empty() {
            let i = self.rng.below(self.shape.paths.len() as u64) as usize;
            out.extend_from_slice(&self.shape.paths[i]);
            return Op::Path;
        }
        let op = self.mix.pick(&mut self.rng);
        let key = self.keys.next(&mut self.rng);
        self.write(op, key, out);
        op
    }

    pub fn write(&mut self, op: Op, key: u64, out: &mut Vec<u8>) {
        if matches!(op, Op::Put | Op::Post) {
            self.fill_body(key, op == Op::Put);
        }
        let shape = &*self.shape;
        let method: &[u8] = match op {
            Op::Get | Op::Query | Op::Path => b"GET ",
            Op::Put => b"PUT ",
            Op::Post => b"POST ",
            Op::Delete => b"DELETE ",
        };
        out.extend_from_slice(method);
        out.extend_from_slice(&shape.table_path);
        match op {
            Op::Get | Op::Put | Op::Delete => {
                out.extend_from_slice(&shape.key_prefix);
                push_u64(out, key);
            }
            Op::Query => {
                out.push(b'?');
                for part in &shape.query {
                    match part {
                        QueryPart::Text(t) => out.extend_from_slice(t),
                        QueryPart::Cat => {
                            out.extend_from_slice(b"cat-");
                            push_u64(out, self.rng.below(shape.categories.max(1)));
                        }
                        QueryPart::Id => {
                            out.extend_from_slice(&shape.key_prefix);
                            push_u64(out, self.keys.next(&mut self.rng));
                        }
                    }
                }
            }
            Op::Post | Op::Path => {}
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&shape.headers);
        if matches!(op, Op::Put | Op::Post) {
            out.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
            push_u64(out, self.body.len() as u64);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&self.body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// `{"id":"p42","category":"cat-42","price":123,"pad":"..."}` sized to --value-bytes.
    fn fill_body(&mut self, key: u64, with_id: bool) {
        let shape = &self.shape;
        let b = &mut self.body;
        b.clear();
        b.push(b'{');
        if with_id {
            b.extend_from_slice(b"\"id\":\"");
            b.extend_from_slice(&shape.key_prefix);
            push_u64(b, key);
            b.extend_from_slice(b"\",");
        }
        b.extend_from_slice(b"\"category\":\"cat-");
        push_u64(b, key % shape.categories.max(1));
        b.extend_from_slice(b"\",\"price\":");
        push_u64(b, self.rng.below(100_000));
        b.extend_from_slice(b",\"pad\":\"");
        let pad = shape.value_bytes.saturating_sub(b.len() + 2);
        let off = self.rng.below(64) as usize;
        b.extend_from_slice(&self.pad[off..off + pad.min(self.pad.len() - off)]);
        b.extend_from_slice(b"\"}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::{KeyChooser, KeyDist};
    use std::sync::Arc;

    fn shape() -> Arc<Shape> {
        Arc::new(Shape {
            headers: b"Host: h\r\n".to_vec(),
            table_path: b"/Product/".to_vec(),
            paths: Vec::new(),
            fixed: None,
            key_prefix: b"p".to_vec(),
            value_bytes: 100,
            categories: 10,
            query: split_query("category={cat}&limit(0,20)"),
        })
    }

    #[test]
    fn put_body_is_json_of_the_requested_size() {
        let mut g = RequestGen::new(
            shape(),
            Mix::parse("put=1").unwrap(),
            KeyChooser::new(&KeyDist::Uniform, 10),
            3,
        );
        let mut out = Vec::new();
        g.write(Op::Put, 42, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("PUT /Product/p42 HTTP/1.1\r\nHost: h\r\n"),
            "{text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["id"], "p42");
        assert_eq!(v["category"], "cat-2");
        assert_eq!(body.len(), 100);
    }

    #[test]
    fn query_fills_the_template() {
        let mut g = RequestGen::new(
            shape(),
            Mix::parse("query=1").unwrap(),
            KeyChooser::new(&KeyDist::Uniform, 10),
            3,
        );
        let mut out = Vec::new();
        g.next(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /Product/?category=cat-"), "{text}");
        assert!(text.contains("&limit(0,20) HTTP/1.1\r\n"), "{text}");
    }

    #[test]
    fn mix_and_url_errors_name_the_input() {
        assert!(Mix::parse("get=1,fly=2")
            .unwrap_err()
            .to_string()
            .contains("fly"));
        assert!(Mix::parse("get=0").is_err());
        let u = Url::parse("http://127.0.0.1:9926/").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("127.0.0.1:9926", "")
        );
        assert!(Url::parse("https://x").is_err());
    }
}
