//! The Harper parity table of `docs/harper.md` is true of microlith: every call in it, made
//! in order on a node with the page's tables, answers the status, body and headers of the
//! table's "microlith" column. (`scripts/harper-parity.py` checks the "Harper 4.7" column
//! against a running Harper.)

mod common;
use common::*;
use serde_json::Value;

const TABLES: &str = "[[tables]]\nname = \"Product\"\nindexes = [\"category\"]\n\
    attributes = { name = \"String\", description = \"String\", category = \"ID\" }\n\
    [[tables]]\nname = \"Price\"\nattributes = { amount_cents = \"Int\", currency = \"String\" }\n";

struct Row {
    n: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    want: Want,
}

struct Want {
    status: u16,
    body: Option<String>,
    headers: Vec<(String, String)>,
}

fn rows() -> Vec<Row> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/harper.md"))
        .expect("docs/harper.md");
    let table = doc
        .split("<!-- parity:start -->")
        .nth(1)
        .and_then(|t| t.split("<!-- parity:end -->").next())
        .expect("the parity table's markers");
    table.trim().lines().skip(2).map(row).collect()
}

fn row(line: &str) -> Row {
    let cells: Vec<&str> = line
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    let (request, rest) = cells[1]
        .strip_prefix('`')
        .and_then(|r| r.split_once('`'))
        .expect("a request in backticks");
    let (method, path) = request.split_once(' ').expect("METHOD path");
    let headers = rest
        .split('[')
        .skip(1)
        .filter_map(|h| h.split_once(']'))
        .filter_map(|(h, _)| h.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Row {
        n: cells[0].to_string(),
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body: cells[2].trim_matches('`').to_string(),
        want: want(cells[4]),
    }
}

fn want(cell: &str) -> Want {
    let mut parts = cell.split(" · ").map(str::trim);
    let status = parts.next().unwrap().parse().expect("a status first");
    let mut w = Want {
        status,
        body: None,
        headers: Vec::new(),
    };
    for p in parts {
        let header = p.split_once(": ").filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        match header {
            Some((name, value)) => w.headers.push((
                name.to_ascii_lowercase(),
                value.trim_end_matches('…').to_string(),
            )),
            None => w.body = Some(p.trim_matches('`').to_string()),
        }
    }
    w
}

fn body_matches(want: &str, got: &Resp) -> bool {
    match want {
        "text" => true,
        "problem" => {
            got.content_type.as_deref() == Some("application/problem+json")
                && got.json()["status"] == got.status
        }
        "<string>" => got.json().is_string(),
        _ => match want.strip_prefix("⊇ ") {
            Some(sub) => {
                let sub: Value = serde_json::from_str(sub).unwrap();
                let got = got.json();
                sub.as_object().unwrap().iter().all(|(k, v)| &got[k] == v)
            }
            None => got.json() == serde_json::from_str::<Value>(want).unwrap(),
        },
    }
}

#[test]
fn every_call_of_the_parity_table_answers_the_microlith_column() {
    let s = Server::start(TABLES);
    let a = agent();
    let rows = rows();
    assert_eq!(rows.len(), 32, "the table's rows");
    for r in rows {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = (!r.body.is_empty()).then_some(r.body.as_str());
        let got = send(&a, &r.method, &s.url(&r.path), body, &headers);
        let context = format!(
            "row {} {} {}: {} {}",
            r.n, r.method, r.path, got.status, got.body
        );
        assert_eq!(got.status, r.want.status, "{context}");
        if let Some(want) = &r.want.body {
            assert!(body_matches(want, &got), "body, want {want}: {context}");
        }
        for (name, prefix) in &r.want.headers {
            let value = got.header(name).unwrap_or_default();
            assert!(
                value.starts_with(prefix.as_str()),
                "{name}: {value:?}, want {prefix:?}…: {context}"
            );
        }
    }
}
