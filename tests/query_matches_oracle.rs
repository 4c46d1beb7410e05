//! Query results equal a brute-force oracle: random records with mixed-type attributes (some
//! indexed, some not), random queries with every comparator, typed and auto literals, null,
//! nested `&`/`|` groups, sort, limit and select, all through the real HTTP protocol. The oracle
//! is written from the query language's spec, independently of the server's code.
//! Also: a few hand-checked cases on a small fixed table, and bad syntax answering 400 with a
//! problem document naming the offending token. A query the server does not answer within 10 s
//! counts as a failure of that query (the run goes on, and stops after three).

mod common;
use common::*;

use serde_json::{json, Map, Value};

use std::time::{Duration, Instant};

const RECORDS: usize = 300;
const CASES: usize = 600;
const SEED: u64 = 0x5eed_1234_abcd_0042;

const TABLES: &str = "[shards]\ncount = 2\n\n\
[[tables]]\nname = \"Item\"\nprimary_key = \"id\"\nindexes = [\"a\", \"s\"]\n\n\
[[tables]]\nname = \"Fixed\"\nprimary_key = \"id\"\nindexes = [\"a\"]\n";

// ---------------------------------------------------------------------------------------------
// Deterministic RNG (xorshift64*).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `pct`/100.
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as usize) as i64
    }
}

// ---------------------------------------------------------------------------------------------
// Random data.

/// A value for `a`/`b`: `None` means the attribute is missing.
fn numberish(rng: &mut Rng) -> Option<Value> {
    match rng.below(100) {
        0..=9 => None,
        10..=17 => Some(Value::Null),
        18..=64 => Some(json!(rng.range(-3, 12))),
        65..=76 => Some(json!(*rng.pick(&[2.5, 7.5, -1.5, 5.0, 0.5, 10.0, 11.25]))),
        77..=89 => Some(json!(*rng.pick(&["5", "10", "7", "-2", "2.5", "0"]))),
        90..=95 => Some(json!(rng.chance(50))),
        _ => Some(json!(*rng.pick(&["abc", "b", "x y"]))),
    }
}

fn short_string(rng: &mut Rng) -> String {
    let len = 1 + rng.below(3);
    (0..len).map(|_| *rng.pick(&['a', 'b', 'c'])).collect()
}

fn stringish(rng: &mut Rng) -> Option<Value> {
    match rng.below(100) {
        0..=9 => None,
        10..=15 => Some(Value::Null),
        16..=84 => Some(json!(short_string(rng))),
        85..=94 => Some(json!(
            *rng.pick(&["a b", "x&y", "1+1", "5", "ü", "ab=c", "", "(b)"])
        )),
        _ => Some(json!(rng.range(0, 6))),
    }
}

fn boolish(rng: &mut Rng) -> Option<Value> {
    match rng.below(100) {
        0..=39 => None,
        40..=49 => Some(Value::Null),
        50..=89 => Some(json!(rng.chance(50))),
        _ => Some(json!(*rng.pick(&["true", "x"]))),
    }
}

fn random_record(rng: &mut Rng, id: usize) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id.to_string()));
    for (name, v) in [
        ("a", numberish(rng)),
        ("b", numberish(rng)),
        ("s", stringish(rng)),
        ("t", boolish(rng)),
    ] {
        if let Some(v) = v {
            m.insert(name.into(), v);
        }
    }
    Value::Object(m)
}

mod query_oracle;
use query_oracle::*;

// ---------------------------------------------------------------------------------------------
// Random queries and their URL form.

/// Percent-encodes `s` for a query value: unreserved bytes and `+` stay (`+` is literal), the
/// rest becomes `%XX`; with `force`, plain letters are sometimes encoded too.
fn encode(rng: &mut Rng, s: &str, force: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+');
        if plain && !(force && rng.chance(15)) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn lit_text(rng: &mut Rng, lit: &Lit) -> String {
    match lit {
        Lit::Null => "null".into(),
        Lit::Auto(t) => {
            let force = rng.chance(20);
            encode(rng, t, force)
        }
        Lit::Str(t) => format!("string:{}", encode(rng, t, false)),
        Lit::Num(_, t) => format!("number:{t}"),
        Lit::Bool(b) => format!("boolean:{b}"),
    }
}

const ATTRS: &[&str] = &["a", "b", "s", "t", "id"];

fn random_lit(rng: &mut Rng, attr: &str, op: Op) -> Lit {
    if matches!(op, Op::Eq | Op::Ne) && rng.chance(12) {
        return Lit::Null;
    }
    let numeric = &[
        "-4", "-3", "-1.5", "0", "0.5", "2", "2.5", "5", "5.0", "7", "7.5", "10", "11.25", "12",
        "13",
    ];
    let stringy = &[
        "a", "b", "c", "ab", "ba", "abc", "bc", "a b", "x&y", "1+1", "ü", "ab=c", "(b)", "x y",
        "10", "1",
    ];
    let t: String = match attr {
        "a" | "b" if rng.chance(70) => rng.pick(numeric).to_string(),
        "id" if rng.chance(60) => rng.range(0, 310).to_string(),
        "t" if rng.chance(70) => rng.pick(&["true", "false"]).to_string(),
        _ if rng.chance(60) => short_string(rng),
        _ => rng.pick(stringy).to_string(),
    };
    match rng.below(100) {
        0..=69 => Lit::Auto(t),
        70..=81 => Lit::Str(t),
        82..=93 => {
            let x = rng.pick(numeric);
            Lit::Num(x.parse().unwrap(), x.to_string())
        }
        _ => Lit::Bool(rng.chance(50)),
    }
}

fn random_cond(rng: &mut Rng) -> Filter {
    let attr = if rng.chance(3) {
        "zz"
    } else {
        *rng.pick(ATTRS)
    };
    let op = match attr {
        "s" | "id" if rng.chance(50) => *rng.pick(&[Op::Sw, Op::Ew, Op::Ct]),
        _ => *rng.pick(&[
            Op::Eq,
            Op::Eq,
            Op::Ne,
            Op::Gt,
            Op::Ge,
            Op::Lt,
            Op::Le,
            Op::Sw,
            Op::Ew,
            Op::Ct,
        ]),
    };
    let lit = random_lit(rng, attr, op);
    Filter::Cond(attr.to_string(), op, lit)
}

fn random_filter(rng: &mut Rng, depth: usize) -> Filter {
    if depth == 0 || rng.chance(45) {
        return random_cond(rng);
    }
    let n = 2 + rng.below(2);
    let kids = (0..n).map(|_| random_filter(rng, depth - 1)).collect();
    if rng.chance(50) {
        Filter::And(kids)
    } else {
        Filter::Or(kids)
    }
}

fn group(rng: &mut Rng, inner: String) -> String {
    if rng.chance(50) {
        format!("({inner})")
    } else {
        format!("[{inner}]")
    }
}

fn render(rng: &mut Rng, f: &Filter) -> String {
    match f {
        Filter::Cond(attr, op, lit) => {
            let v = lit_text(rng, lit);
            let op = match op {
                Op::Eq => return format!("{attr}={v}"),
                Op::Ne => "ne",
                Op::Gt => "gt",
                Op::Ge => "ge",
                Op::Lt => "lt",
                Op::Le => "le",
                Op::Sw => "sw",
                Op::Ew => "ew",
                Op::Ct => "ct",
            };
            format!("{attr}={op}={v}")
        }
        Filter::And(xs) => xs
            .iter()
            .map(|x| render_and_child(rng, x))
            .collect::<Vec<_>>()
            .join("&"),
        Filter::Or(xs) => xs
            .iter()
            .map(|x| {
                let s = render(rng, x);
                if rng.chance(15) {
                    group(rng, s)
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// A child of `&`: an `|` must be grouped (`&` binds tighter); others sometimes are, needlessly.
fn render_and_child(rng: &mut Rng, f: &Filter) -> String {
    let s = render(rng, f);
    if matches!(f, Filter::Or(_)) || rng.chance(15) {
        group(rng, s)
    } else {
        s
    }
}

fn random_query(rng: &mut Rng) -> (Query, String) {
    let mut q = Query::default();
    if rng.chance(92) {
        q.filter = Some(random_filter(rng, 3));
    }
    let mut calls = Vec::new();
    if rng.chance(55) {
        let n = 1 + rng.below(2);
        let mut names: Vec<&str> = Vec::new();
        while names.len() < n {
            let a = *rng.pick(&["a", "b", "s", "t", "id", "a", "b", "s"]);
            if !names.contains(&a) {
                names.push(a);
            }
        }
        let keys: Vec<String> = names
            .iter()
            .map(|a| {
                let desc = rng.chance(50);
                q.sort.push((a.to_string(), desc));
                match (desc, rng.chance(50)) {
                    (true, _) => format!("-{a}"),
                    (false, true) => format!("+{a}"),
                    (false, false) => a.to_string(),
                }
            })
            .collect();
        calls.push(format!("sort({})", keys.join(",")));
    }
    if rng.chance(45) {
        let start = if rng.chance(40) { rng.below(40) } else { 0 };
        let end = start + rng.below(60);
        q.limit = Some((start, end));
        if start == 0 && rng.chance(50) {
            calls.push(format!("limit({end})"));
        } else {
            calls.push(format!("limit({start},{end})"));
        }
    }
    if rng.chance(35) {
        let names: Vec<String> = if rng.chance(40) {
            vec![rng.pick(&["a", "b", "s", "t", "id"]).to_string()]
        } else {
            let x = *rng.pick(&["a", "s", "id", "t"]);
            let y = *rng.pick(&["b", "t", "a", "s"]);
            if x == y {
                vec![x.to_string(), "id".to_string()]
            } else {
                vec![x.to_string(), y.to_string()]
            }
        };
        calls.push(format!("select({})", names.join(",")));
        q.select = Some(names);
    }
    // Top-level pieces joined with `&`: the filter's AND terms (or the filter, grouped if it is
    // an `|`) and the calls, in random order.
    let mut pieces: Vec<String> = match &q.filter {
        None => Vec::new(),
        Some(Filter::And(xs)) => xs.iter().map(|x| render_and_child(rng, x)).collect(),
        Some(f) => vec![render_and_child(rng, f)],
    };
    for c in calls {
        let at = rng.below(pieces.len() + 1);
        pieces.insert(at, c);
    }
    let text = pieces.join("&");
    (q, text)
}

// ---------------------------------------------------------------------------------------------

fn query_url(s: &Server, table: &str, q: &str) -> String {
    s.url(&format!("/{table}/?{q}"))
}

fn load(a: &ureq::Agent, s: &Server, table: &str, docs: &[Value]) {
    for d in docs {
        let id = d["id"].as_str().unwrap();
        let r = put(a, &s.url(&format!("/{table}/{id}")), &d.to_string());
        assert_eq!(r.status, 201, "PUT {table}/{id} {d}: {}", r.body);
    }
}

/// An agent whose requests give up after 10 s, so that a request the server never answers is
/// reported as a failure of that query (and the run goes on) instead of stalling the test.
fn query_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

/// Runs a query, expecting 200 and a JSON array. Transport errors (no answer) are `Err` too.
fn run_query(a: &ureq::Agent, s: &Server, table: &str, q: &str) -> Result<Vec<Value>, String> {
    let (status, body) = match a.get(&query_url(s, table, q)).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => return Err(format!("no answer: {e}")),
    };
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    match serde_json::from_str::<Value>(&body) {
        Ok(Value::Array(rows)) => Ok(rows),
        _ => Err(format!("not a JSON array: {body}")),
    }
}

fn tail(text: &str, n: usize) -> &str {
    let mut at = text.len().saturating_sub(n);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

/// Serialized, so object key order counts (select's order) and 5 differs from 5.0.
fn canon(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r.to_string()).collect()
}

/// One server for both parts (fewer start-ups on a busy machine).
#[test]
fn queries_match_a_brute_force_oracle() {
    let s = Server::start(TABLES);
    fixed_cases_and_bad_syntax(&s);
    random_queries_match_the_oracle(&s, CASES);
}

/// With room for only a few candidate ids, indexed queries read every candidate instead of
/// reading them in id order: the answers must not change.
#[test]
fn indexed_queries_past_the_id_bound_match_the_oracle() {
    // (Lines before the first table header land in the harness's `[http]`.)
    let s = Server::start(&format!("max_index_ids = 3\n\n{TABLES}"));
    random_queries_match_the_oracle(&s, CASES / 2);
}

fn random_queries_match_the_oracle(s: &Server, cases: usize) {
    let started = Instant::now();
    let a = query_agent();
    let mut rng = Rng(SEED);
    let records: Vec<Value> = (0..RECORDS).map(|i| random_record(&mut rng, i)).collect();
    load(&a, s, "Item", &records);

    let mut failures = Vec::new();
    let mut unanswered = 0;
    let mut nonempty = 0;
    for case in 0..cases {
        if unanswered >= 3 {
            failures.push(format!(
                "stopped after case {case}: 3 queries got no answer"
            ));
            break;
        }
        let (q, text) = random_query(&mut rng);
        let expected = oracle(&records, &q);
        if !expected.is_empty() {
            nonempty += 1;
        }
        match run_query(&a, s, "Item", &text) {
            Ok(got) if canon(&got) == canon(&expected) => {}
            Ok(got) => failures.push(format!(
                "case {case}: GET /Item/?{text}\n  parsed as {q:?}\n  expected ({} rows): {}\n  got      ({} rows): {}",
                expected.len(),
                Value::Array(expected.clone()),
                got.len(),
                Value::Array(got)
            )),
            Err(e) => {
                unanswered += e.starts_with("no answer") as usize;
                failures.push(format!("case {case}: GET /Item/?{text}\n  parsed as {q:?}\n  {e}"))
            }
        }
    }
    // The generator must produce interesting queries, not mostly empty answers.
    assert!(
        nonempty > cases / 3,
        "only {nonempty} of {cases} queries had any rows"
    );
    if !failures.is_empty() {
        eprintln!("server log tail:\n{}", tail(&s.log(), 4000));
        for f in failures.iter().take(25) {
            eprintln!("{f}\n");
        }
        panic!(
            "{} of {cases} queries disagree with the oracle (first 25 above)",
            failures.len()
        );
    }
    eprintln!(
        "{cases} random queries over {RECORDS} records matched the oracle in {:?}",
        started.elapsed()
    );
}

fn fixed_cases_and_bad_syntax(s: &Server) {
    let a = query_agent();
    let docs = vec![
        json!({"id": "f1", "a": 10, "s": "apple"}),
        json!({"id": "f2", "a": 7.5, "s": "banana"}),
        json!({"id": "f3", "a": "9", "s": "cherry"}),
        json!({"id": "f4", "a": 5, "s": "apricot"}),
        json!({"id": "f5", "a": null}),
        json!({"id": "f6", "s": "avocado"}),
        json!({"id": "f7", "a": 6, "t": true}),
        json!({"id": "f8", "a": true}),
        json!({"id": "f9", "a": "5", "s": "a b"}),
    ];
    load(&a, s, "Fixed", &docs);
    let ids = |q: &str| -> Vec<String> {
        let rows = run_query(&a, s, "Fixed", q).unwrap_or_else(|e| panic!("{q}: {e}"));
        rows.iter()
            .map(|r| {
                r["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{q}: row without id: {r}"))
                    .to_string()
            })
            .collect()
    };
    let v = |q: &str| -> Value {
        Value::Array(run_query(&a, s, "Fixed", q).unwrap_or_else(|e| panic!("{q}: {e}")))
    };

    // gt=5 (auto): numbers 10, 7.5, 6 compare numerically; the string "9" compares as a string
    // ("9" > "5"); `true` cannot be compared with "5". Descending: strings before numbers.
    assert_eq!(ids("a=gt=5&sort(-a)&limit(0,3)"), ["f3", "f1", "f2"]);
    assert_eq!(ids("a=gt=5&sort(-a)"), ["f3", "f1", "f2", "f7"]);
    assert_eq!(ids("a=gt=5"), ["f1", "f2", "f3", "f7"]);
    // Equality: auto matches the number 5 and the string "5"; typed literals one type only.
    assert_eq!(ids("a=5"), ["f4", "f9"]);
    assert_eq!(ids("a=5.0"), ["f4"]);
    assert_eq!(ids("a=number:5"), ["f4"]);
    assert_eq!(ids("a=string:5"), ["f9"]);
    assert_eq!(ids("a=true"), ["f8"]);
    assert_eq!(ids("a=boolean:true|t=true"), ["f7", "f8"]);
    // null.
    assert_eq!(ids("a=null"), ["f5", "f6"]);
    assert_eq!(ids("a=ne=null"), ["f1", "f2", "f3", "f4", "f7", "f8", "f9"]);
    assert_eq!(ids("a=ne=5&a=ne=null"), ["f1", "f2", "f3", "f7", "f8"]);
    // String operators; percent-decoding.
    assert_eq!(ids("s=sw=a|s=ew=y"), ["f1", "f3", "f4", "f6", "f9"]);
    assert_eq!(ids("s=sw=ap&s=ct=ic"), ["f4"]);
    assert_eq!(ids("s=ct=an"), ["f2"]);
    assert_eq!(ids("s=a%20b"), ["f9"]);
    assert_eq!(ids("s=lt=b"), ["f1", "f4", "f6", "f9"]);
    // Groups, precedence.
    assert_eq!(ids("a=6|a=10&s=apple"), ["f1", "f7"]);
    assert_eq!(ids("(a=6|a=10)&s=apple"), ["f1"]);
    assert_eq!(ids("[a=6|a=10]&[s=apple|t=true]"), ["f1", "f7"]);
    // Sort with nulls last in both directions; select bare values and objects; limit window.
    assert_eq!(
        v("sort(a)&select(a)"),
        json!([true, 5, 6, 7.5, 10, "5", "9", null, null])
    );
    assert_eq!(
        v("sort(-a)&select(a)"),
        json!(["9", "5", 10, 7.5, 6, 5, true, null, null])
    );
    assert_eq!(
        v("sort(-s,a)&select(s,a)&limit(1,4)"),
        json!([{"s": "banana", "a": 7.5}, {"s": "avocado"}, {"s": "apricot", "a": 5}])
    );
    assert_eq!(ids("limit(2)"), ["f1", "f2"]);
    assert_eq!(ids("limit(7,20)"), ["f8", "f9"]);
    assert_eq!(ids("limit(3,3)"), Vec::<String>::new());
    assert_eq!(ids("sort(t,-id)&limit(0,2)"), ["f7", "f9"]);

    // Bad syntax: 400 with a problem document whose detail names the offending token.
    for (q, token) in [
        ("a=foo=1", "foo"),
        ("limit(xyz)", "xyz"),
        ("(a=1|s=apple", "("),
        ("a=1)", ")"),
        ("a=1&frobnicate(a)", "frobnicate"),
        ("a=number:abc", "abc"),
    ] {
        let r = get(&a, &query_url(s, "Fixed", q));
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        let ct = r.content_type.clone().unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{q}: content-type {ct:?}"
        );
        let body = r.json();
        assert_eq!(body["status"], 400, "{q}: {body}");
        let detail = body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{q}: no detail: {body}"));
        assert!(
            detail.contains(token),
            "{q}: detail {detail:?} does not name {token:?}"
        );
    }
}
