//! The layers point down: `runtime`, `storage`, `query` and `net` know nothing of the services
//! built on them (`http`, `mqtt`, `cluster`, `app`, `node`, `security`); `storage`, `query` and
//! `net` (the byte streams and TLS every service shares) also know nothing of `runtime`. Only
//! the composition root (`src/node`) knows every layer.
//!
//! The check reads the sources as text: every path that starts at the crate root, written as
//! `crate::x`, `$crate::x`, `crate::{x, ..}` or `super::..` climbing to the root, in `use`
//! lines or inline, outside comments and string literals.

use std::path::{Path, PathBuf};

/// Top-level modules above the lower layers.
const SERVICES: &[&str] = &["http", "mqtt", "cluster", "app", "node", "security"];

/// (layer directory, top-level modules it must not name).
fn rules() -> Vec<(&'static str, Vec<&'static str>)> {
    let with_runtime: Vec<&str> = SERVICES.iter().copied().chain(["runtime"]).collect();
    vec![
        ("runtime", SERVICES.to_vec()),
        ("storage", with_runtime.clone()),
        ("query", with_runtime.clone()),
        ("net", with_runtime),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// The tokens of Rust source that matter for paths, each with its line (1-based). Comments,
/// string, byte-string, raw-string and char literals are dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // Skips to just past the closing quote of a (non-raw) literal, counting lines.
    let skip_quoted = |mut i: usize, quote: char, line: &mut usize| -> usize {
        while i < c.len() && c[i] != quote {
            if c[i] == '\\' {
                i += 1;
            }
            if c.get(i) == Some(&'\n') {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            i = skip_quoted(i + 1, '"', &mut line);
            out.push((Tok::Other, start));
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime / label ('a).
            if next == Some('\\') {
                i = skip_quoted(i + 1, '\'', &mut line);
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
            out.push((Tok::Other, line));
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // Raw strings: r"..", r#".."#, br"..", cr#".."#; r#ident is a raw identifier.
            if matches!(word.as_str(), "r" | "br" | "cr") {
                let mut hashes = 0;
                while c.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(i + hashes) == Some(&'"') {
                    let first = line;
                    i += hashes + 1;
                    loop {
                        if i >= c.len() {
                            break;
                        }
                        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                            i += hashes + 1;
                            break;
                        }
                        if c[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                    out.push((Tok::Other, first));
                    continue;
                }
                if word == "r" && hashes == 1 {
                    i += 1; // r#ident: the identifier follows
                    continue;
                }
            }
            if matches!(word.as_str(), "b" | "c") && c.get(i) == Some(&'"') {
                continue; // b"..", c"..": the string is skipped next
            }
            if word == "b" && c.get(i) == Some(&'\'') {
                continue; // b'x'
            }
            out.push((Tok::Ident(word), line));
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// The module path of a source file under `src/` (`src/storage/writer/mod.rs` →
/// `["storage", "writer"]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every top-level module that `src` names through a path from the crate root, with its line.
/// `module` is the file's module path (for `super::`).
fn root_names(src: &str, module: &[String]) -> Vec<(String, usize)> {
    let t = tokens(src);
    let ident = |k: usize| match t.get(k) {
        Some((Tok::Ident(w), _)) => Some(w.as_str()),
        _ => None,
    };
    let sep = |k: usize| matches!(t.get(k), Some((Tok::PathSep, _)));
    let mut names = Vec::new();
    for k in 0..t.len() {
        // Only the start of a path: `a::crate` or `a::super` is not one.
        if k > 0 && sep(k - 1) {
            continue;
        }
        // Where the path is at the crate root, the index of the token after `root::`.
        let after_root = match ident(k) {
            Some("crate") if sep(k + 1) => k + 2,
            Some("super") if sep(k + 1) => {
                let mut depth = 0;
                let mut j = k;
                while ident(j) == Some("super") && sep(j + 1) {
                    depth += 1;
                    j += 2;
                }
                if depth != module.len() {
                    // Below the root: the path stays inside this file's own top module.
                    continue;
                }
                j
            }
            _ => continue,
        };
        match t.get(after_root) {
            Some((Tok::Ident(w), line)) => names.push((w.clone(), *line)),
            Some((Tok::Open, _)) => {
                // `crate::{a::b, c, d::{..}}`: the first name of each item at depth 1.
                let (mut j, mut depth, mut item_start) = (after_root + 1, 1, true);
                while let Some((tok, line)) = t.get(j) {
                    match tok {
                        Tok::Open => depth += 1,
                        Tok::Close => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Tok::Comma if depth == 1 => {
                            item_start = true;
                            j += 1;
                            continue;
                        }
                        Tok::Ident(w) if depth == 1 && item_start => names.push((w.clone(), *line)),
                        _ => {}
                    }
                    item_start = false;
                    j += 1;
                }
            }
            _ => {}
        }
    }
    names
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The offending lines of one file: `file:line: text (names crate::x)`.
fn violations(src_dir: &Path, file: &Path, forbidden: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let rel = file.strip_prefix(src_dir).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    root_names(&text, &module_path(rel))
        .into_iter()
        .filter(|(name, _)| forbidden.contains(&name.as_str()))
        .map(|(name, line)| {
            format!(
                "src/{}:{line}: {}    (names crate::{name})",
                rel.display(),
                lines.get(line - 1).map_or("", |l| l.trim())
            )
        })
        .collect()
}

#[test]
fn lower_layers_never_name_the_layers_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offending = Vec::new();
    let mut checked = 0;
    for (layer, forbidden) in rules() {
        let files = rust_files(&src.join(layer));
        assert!(
            !files.is_empty(),
            "no .rs files under src/{layer}: did the layer move? Update this test."
        );
        checked += files.len();
        for file in files {
            offending.extend(violations(&src, &file, &forbidden));
        }
    }
    assert!(
        offending.is_empty(),
        "{} line(s) in the lower layers name a layer above them. runtime/ must not use \
         http, mqtt, cluster, app, node or security; storage/, query/ and net/ must not use \
         those or runtime. Move the dependency up (the layer above plugs into the one below, \
         as src/node does), or move the shared item down:\n{}",
        offending.len(),
        offending.join("\n")
    );
    eprintln!("{checked} files checked");
}

/// The checker itself finds every form of path to a module and ignores comments and strings.
#[test]
fn the_check_sees_every_form_of_path() {
    let src = r###"
//! Docs may say crate::http freely.
use crate::http::server;                      // line 3
use crate::{storage::kv, mqtt::broker};       // line 4
use crate::{
    query,
    cluster::{a, b},                          // line 7
};
fn f() {
    let s = "crate::node::x"; /* crate::app */ let r = r#"crate::security"#;
    let c = '"'; let l: &'static str = "";
    crate::security::check();                 // line 12
    let x = crate :: app :: run();            // line 13
    $crate::node::go();                       // line 14
    super::super::runtime::x();               // line 15
    super::mqtt::y();                         // inside runtime: crate::runtime::mqtt
    other::crate_like::http();
    // crate::http in a comment
    /* crate::mqtt
       in a block */
    let z = crate::storage::kv::get();
}
"###;
    let names = root_names(src, &["runtime".into(), "records".into()]);
    let forbidden: Vec<(String, usize)> = names
        .into_iter()
        .filter(|(n, _)| n != "storage" && n != "query")
        .collect();
    let want: Vec<(String, usize)> = [
        ("http", 3),
        ("mqtt", 4),
        ("cluster", 7),
        ("security", 12),
        ("app", 13),
        ("node", 14),
        ("runtime", 15),
    ]
    .map(|(n, l)| (n.to_string(), l))
    .to_vec();
    assert_eq!(forbidden, want);
    assert_eq!(
        module_path(Path::new("storage/writer/mod.rs")),
        ["storage", "writer"]
    );
    assert_eq!(module_path(Path::new("query/parse.rs")), ["query", "parse"]);
}
