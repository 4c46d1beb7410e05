//! Content negotiation: which representation an answer takes (`Accept`), which one a request
//! body is in (`Content-Type`), and which content coding an answer may take
//! (`Accept-Encoding`). Pure header parsing; what the choices mean is `encode`, `decode` and
//! `compress`.

/// A representation of records the REST API reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Cbor,
    MsgPack,
    Csv,
}

/// Answer types, in the order of preference when a client likes several equally.
const ANSWERS: [Format; 4] = [Format::Json, Format::Cbor, Format::MsgPack, Format::Csv];

/// The answer types, for a 406.
pub const ANSWER_TYPES: &str =
    "application/json, application/cbor, application/x-msgpack, text/csv";

/// The body types, for a 415.
pub const BODY_TYPES: &str = "application/json, application/cbor, application/x-msgpack";

impl Format {
    /// The media type an answer in this format carries.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Cbor => "application/cbor",
            Format::MsgPack => "application/x-msgpack",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// Whether a `type/subtype` (lowercase, no parameters) names this format.
    fn is_named(self, mime: &str) -> bool {
        match self {
            Format::Json => mime == "application/json",
            Format::Cbor => mime == "application/cbor",
            Format::MsgPack => mime == "application/x-msgpack" || mime == "application/msgpack",
            Format::Csv => mime == "text/csv",
        }
    }

    /// The top-level type of its media type.
    fn top(self) -> &'static str {
        match self {
            Format::Csv => "text",
            _ => "application",
        }
    }
}

/// The format a request body declares: JSON (also `+json` types, and no type at all), CBOR or
/// MessagePack; `None` for any other type.
pub fn body_format(content_type: Option<&str>) -> Option<Format> {
    let Some(ct) = content_type else {
        return Some(Format::Json);
    };
    let mime = mime_of(ct);
    if mime.contains('/') && mime.ends_with("+json") {
        return Some(Format::Json);
    }
    [Format::Json, Format::Cbor, Format::MsgPack]
        .into_iter()
        .find(|f| f.is_named(&mime))
}

/// The answer format `accept` asks for: JSON when there is no `Accept` (or it names no media
/// range at all); else the format with the highest quality, earlier ranges first on a tie;
/// `None` when the client accepts none of ours (406).
pub fn answer_format(accept: Option<&str>) -> Option<Format> {
    let ranges: Vec<Range> = accept.into_iter().flat_map(ranges).collect();
    if ranges.is_empty() {
        return Some(Format::Json);
    }
    let mut best: Option<(Format, u16, usize)> = None;
    for f in ANSWERS {
        let Some((q, pos)) = quality(&ranges, f) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((_, bq, bpos)) => q > bq || (q == bq && pos < bpos),
        };
        if q > 0 && better {
            best = Some((f, q, pos));
        }
    }
    best.map(|(f, _, _)| f)
}

/// One media range of `Accept`: `type/subtype`, lowercase, with its quality in thousandths.
#[derive(Debug)]
struct Range {
    mime: String,
    q: u16,
}

/// The media ranges of an `Accept` value (entries that are no `type/subtype` are skipped).
fn ranges(accept: &str) -> impl Iterator<Item = Range> + '_ {
    accept.split(',').filter_map(|entry| {
        let mime = mime_of(entry);
        mime.split_once('/')
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
            .then(|| Range {
                q: q_of(entry),
                mime,
            })
    })
}

/// The quality `ranges` give format `f` and the position of the range that gives it: the most
/// specific matching range decides (`text/csv` before `text/*` before `*/*`).
fn quality(ranges: &[Range], f: Format) -> Option<(u16, usize)> {
    let wildcard = format!("{}/*", f.top());
    let specificity = |r: &Range| {
        if f.is_named(&r.mime) {
            Some(3)
        } else if r.mime == wildcard {
            Some(2)
        } else if r.mime == "*/*" {
            Some(1)
        } else {
            None
        }
    };
    let mut best: Option<(u8, u16, usize)> = None;
    for (pos, r) in ranges.iter().enumerate() {
        if let Some(s) = specificity(r) {
            if best.is_none_or(|(bs, _, _)| s > bs) {
                best = Some((s, r.q, pos));
            }
        }
    }
    best.map(|(_, q, pos)| (q, pos))
}

/// A content coding the server applies to answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    /// Its `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// What `Accept-Encoding` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encodings {
    /// The coding to use when the answer is worth compressing (brotli when it is liked at
    /// least as much as gzip); `None` when neither is acceptable.
    pub coding: Option<Coding>,
    /// Whether an uncompressed answer is acceptable (`identity;q=0`, or `*;q=0` without
    /// `identity`, say no).
    pub identity: bool,
}

/// Parses `Accept-Encoding`; no header means no coding (and identity).
pub fn encodings(accept_encoding: Option<&str>) -> Encodings {
    let Some(value) = accept_encoding else {
        return Encodings {
            coding: None,
            identity: true,
        };
    };
    let mut star = None;
    let (mut br, mut gzip, mut identity) = (None, None, None);
    for entry in value.split(',') {
        let name = mime_of(entry);
        let q = Some(q_of(entry));
        match name.as_str() {
            "br" => br = q,
            "gzip" | "x-gzip" => gzip = q,
            "identity" => identity = q,
            "*" => star = q,
            _ => {}
        }
    }
    let br = br.or(star).unwrap_or(0);
    let gzip = gzip.or(star).unwrap_or(0);
    let coding = match (br, gzip) {
        (0, 0) => None,
        (b, g) if b >= g => Some(Coding::Brotli),
        _ => Some(Coding::Gzip),
    };
    Encodings {
        coding,
        identity: identity.or(star).is_none_or(|q| q > 0),
    }
}

/// The first token of a header entry (before any `;`), trimmed and lowercase.
fn mime_of(entry: &str) -> String {
    entry
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `q` parameter of a header entry, in thousandths (1000 when absent; 0 when malformed,
/// so that a value that cannot be read never selects anything).
fn q_of(entry: &str) -> u16 {
    for param in entry.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("q") {
            return v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
                .map_or(0, |q| (q * 1000.0).round() as u16);
        }
    }
    1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_accept_or_any_type_is_json() {
        for a in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/*"),
            Some("garbage"),
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ] {
            assert_eq!(answer_format(a), Some(Format::Json), "{a:?}");
        }
    }

    #[test]
    fn each_type_is_chosen_by_its_names() {
        let cases = [
            ("application/json", Format::Json),
            ("Application/CBOR", Format::Cbor),
            ("application/x-msgpack", Format::MsgPack),
            ("application/msgpack", Format::MsgPack),
            ("text/csv", Format::Csv),
            ("text/*", Format::Csv),
            ("text/csv; charset=utf-8; header=present", Format::Csv),
        ];
        for (accept, f) in cases {
            assert_eq!(answer_format(Some(accept)), Some(f), "{accept}");
        }
    }

    #[test]
    fn quality_orders_and_zero_excludes() {
        let pick = |a| answer_format(Some(a));
        assert_eq!(pick("application/cbor;q=0.5, text/csv"), Some(Format::Csv));
        assert_eq!(pick("text/csv, application/cbor"), Some(Format::Csv));
        assert_eq!(
            pick("application/cbor;q=0.9, */*;q=0.1"),
            Some(Format::Cbor)
        );
        assert_eq!(pick("text/*, text/csv;q=0"), None);
        assert_eq!(pick("*/*, application/json;q=0"), Some(Format::Cbor));
        assert_eq!(pick("application/json;q=0"), None);
        assert_eq!(pick("application/json;q=abc"), None);
        assert_eq!(pick("text/html"), None);
        assert_eq!(pick("image/png, text/plain"), None);
    }

    #[test]
    fn body_types() {
        assert_eq!(body_format(None), Some(Format::Json));
        assert_eq!(
            body_format(Some("application/json; charset=utf-8")),
            Some(Format::Json)
        );
        assert_eq!(
            body_format(Some("application/merge-patch+json")),
            Some(Format::Json)
        );
        assert_eq!(body_format(Some("application/cbor")), Some(Format::Cbor));
        assert_eq!(
            body_format(Some("application/msgpack")),
            Some(Format::MsgPack)
        );
        for bad in ["text/csv", "text/plain", "+json", "", "multipart/form-data"] {
            assert_eq!(body_format(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn encodings_prefer_brotli_and_honour_zero() {
        let e = |v| encodings(Some(v));
        let (br, gz) = (Some(Coding::Brotli), Some(Coding::Gzip));
        assert_eq!(encodings(None).coding, None);
        assert!(encodings(None).identity);
        assert_eq!(e("gzip, deflate, br").coding, br);
        assert_eq!(e("gzip").coding, gz);
        assert_eq!(e("x-gzip").coding, gz);
        assert_eq!(e("br;q=0.5, gzip").coding, gz);
        assert_eq!(e("br;q=0, gzip;q=0").coding, None);
        assert_eq!(e("*").coding, br);
        assert_eq!(e("*;q=0.5, br;q=0").coding, gz);
        assert_eq!(e("identity").coding, None);
        assert_eq!(e("").coding, None);
        assert!(e("gzip").identity);
        assert!(!e("gzip, identity;q=0").identity);
        assert!(!e("gzip, *;q=0").identity);
        assert!(e("*;q=0, identity").identity);
    }
}
