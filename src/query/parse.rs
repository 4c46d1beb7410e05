//! Parser of the Harper-compatible REST query string (the URL part after `?`, still
//! percent-encoded) into the query AST: conditions joined by `&` / `|` with `( )` / `[ ]`
//! grouping, plus the top-level calls `select()`, `sort()` and `limit()`.
//!
//! Owns: the grammar and the error messages ([`QueryError`]: byte position, offending token,
//! what was expected). The AST types live in `ast.rs` and are re-exported here. Structure is
//! split on the raw text first; attribute names, values and call arguments are percent-decoded
//! afterwards, so `%26` is a literal `&` and `+` is a literal `+`.

pub use super::ast::{Condition, Expr, Limit, Literal, Op, Query, QueryError, Select, SortKey};
use super::percent::{percent_decode, PercentError};

/// Groups nested deeper than this are rejected (keeps recursion bounded).
pub const MAX_DEPTH: usize = 32;

/// The operator keywords usable in `attr=op=value`; the short ones also start a
/// same-attribute chain term (`price=gt=1&lt=9`).
pub(crate) fn op_keyword(word: &str, long_too: bool) -> Option<Op> {
    let op = match word {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        "sw" => Op::StartsWith,
        "ew" => Op::EndsWith,
        "ct" => Op::Contains,
        _ if !long_too => return None,
        "equals" => Op::Eq,
        "not_equal" => Op::Ne,
        "greater_than" => Op::Gt,
        "greater_than_equal" => Op::Ge,
        "less_than" => Op::Lt,
        "less_than_equal" => Op::Le,
        "starts_with" => Op::StartsWith,
        "ends_with" => Op::EndsWith,
        "contains" => Op::Contains,
        _ => return None,
    };
    Some(op)
}

fn err(position: usize, token: &str, message: impl Into<String>) -> QueryError {
    QueryError {
        position,
        token: token.to_string(),
        message: message.into(),
    }
}

/// Percent-decodes `raw` (which starts at byte `pos` of the query); `+` stays `+`.
fn decode(raw: &str, pos: usize) -> Result<String, QueryError> {
    match percent_decode(raw) {
        Ok(text) => Ok(text.into_owned()),
        Err(PercentError::BadEscape(i)) => {
            let token: String = raw.get(i..).unwrap_or_default().chars().take(3).collect();
            Err(err(
                pos + i,
                &token,
                "invalid percent-encoding, expected %XX",
            ))
        }
        Err(PercentError::NotUtf8) => {
            Err(err(pos, raw, "percent-encoded bytes are not valid UTF-8"))
        }
    }
}

/// Types a decoded value: `null`, `string:`, `number:`, `boolean:` prefixes, else `Auto`.
fn literal(text: String, pos: usize, raw: &str) -> Result<Literal, QueryError> {
    if text == "null" {
        return Ok(Literal::Null);
    }
    if let Some(s) = text.strip_prefix("string:") {
        return Ok(Literal::Str(s.to_string()));
    }
    if let Some(s) = text.strip_prefix("number:") {
        return match s.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Literal::Number(n)),
            _ => Err(err(pos, raw, "number: needs a finite number")),
        };
    }
    if let Some(s) = text.strip_prefix("boolean:") {
        return match s {
            "true" => Ok(Literal::Bool(true)),
            "false" => Ok(Literal::Bool(false)),
            _ => Err(err(pos, raw, "boolean: needs true or false")),
        };
    }
    Ok(Literal::Auto(text))
}

const STRUCTURAL: &[u8] = b"&|()[]";

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    last_attr: Option<String>,
    query: Query,
    /// Byte position of the first call seen, to reject calls mixed with a top-level `|`.
    first_call: Option<usize>,
}

/// Parses a raw (still percent-encoded) query string. The empty string gives an empty query.
pub fn parse(raw_query: &str) -> Result<Query, QueryError> {
    let mut p = Parser {
        src: raw_query,
        pos: 0,
        last_attr: None,
        query: Query::default(),
        first_call: None,
    };
    let (filter, alternatives) = p.parse_or(0)?;
    if let Some(b) = p.peek() {
        let tok = p.char_at(p.pos);
        let msg = match b {
            b')' | b']' => format!("unbalanced '{tok}'"),
            _ => format!("unexpected '{tok}', expected '&', '|' or end of query"),
        };
        return Err(err(p.pos, &tok, msg));
    }
    if let (Some(e), true) = (p.call_in_or(), alternatives > 1) {
        return Err(e);
    }
    p.query.filter = filter;
    Ok(p.query)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// The whole character at byte `at`, for an error's token: what stands where structure
    /// was expected may be any character, and its first byte alone is not one.
    fn char_at(&self, at: usize) -> String {
        let c = self.src.get(at..).and_then(|rest| rest.chars().next());
        c.map(String::from).unwrap_or_default()
    }

    /// The error for a call seen in a query whose top level has a `|`.
    fn call_in_or(&self) -> Option<QueryError> {
        let at = self.first_call?;
        let token = self.src.get(at..).unwrap_or_default();
        let token = token
            .get(..token.find('(').unwrap_or(token.len()))
            .unwrap_or_default();
        Some(err(at, token, "calls cannot be combined with '|'; use '&'"))
    }

    /// `and ('|' and)*`; returns the expression (None if it holds no condition) and the number
    /// of `|`-separated alternatives.
    fn parse_or(&mut self, depth: usize) -> Result<(Option<Expr>, usize), QueryError> {
        let mut alts = Vec::new();
        let mut count = 0;
        loop {
            let and = self.parse_and(depth)?;
            count += 1;
            match and {
                Some(Expr::Or(inner)) => alts.extend(inner),
                Some(e) => alts.push(e),
                None if depth == 0 && count == 1 && self.peek() != Some(b'|') => {}
                None => {
                    if let Some(e) = self.call_in_or().filter(|_| depth == 0) {
                        return Err(e);
                    }
                    let tok = self.char_at(self.pos);
                    return Err(err(self.pos, &tok, "expected a condition"));
                }
            }
            if self.peek() != Some(b'|') {
                break;
            }
            self.pos += 1;
        }
        let expr = if alts.len() > 1 {
            Some(Expr::Or(alts))
        } else {
            alts.pop()
        };
        Ok((expr, count))
    }

    /// `term ('&' term)*`; empty terms (`a=1&&b=2`, a trailing `&`) are skipped.
    fn parse_and(&mut self, depth: usize) -> Result<Option<Expr>, QueryError> {
        let mut terms = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'|' | b')' | b']') => break,
                Some(b'&') => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            match self.parse_term(depth)? {
                Some(Expr::And(inner)) => terms.extend(inner),
                Some(e) => terms.push(e),
                None => {}
            }
            match self.peek() {
                None | Some(b'&' | b'|' | b')' | b']') => {}
                Some(_) => {
                    let tok = self.char_at(self.pos);
                    let msg = format!("unexpected '{tok}', expected '&', '|' or end of group");
                    return Err(err(self.pos, &tok, msg));
                }
            }
        }
        Ok(match terms.len() {
            0 => None,
            1 => terms.pop(),
            _ => Some(Expr::And(terms)),
        })
    }

    /// A group, a call (returns None) or a condition.
    fn parse_term(&mut self, depth: usize) -> Result<Option<Expr>, QueryError> {
        let start = self.pos;
        if let Some(open @ (b'(' | b'[')) = self.peek() {
            let close = if open == b'(' { b')' } else { b']' };
            let (o, c) = (open as char, close as char);
            if depth >= MAX_DEPTH {
                return Err(err(start, &o.to_string(), "groups nested too deeply"));
            }
            self.pos += 1;
            let (inner, _) = self.parse_or(depth + 1)?;
            return match self.peek() {
                Some(b) if b == close => {
                    self.pos += 1;
                    Ok(inner)
                }
                Some(_) => {
                    let tok = self.char_at(self.pos);
                    Err(err(
                        self.pos,
                        &tok,
                        format!("expected '{c}' but found '{tok}'"),
                    ))
                }
                None => Err(err(start, &o.to_string(), format!("unbalanced '{o}'"))),
            };
        }
        let bytes = self.src.as_bytes();
        let mut end = start;
        while bytes.get(end).is_some_and(|b| !STRUCTURAL.contains(b)) {
            end += 1;
        }
        let seg = self.src.get(start..end).unwrap_or_default();
        self.pos = end;
        if self.peek() == Some(b'(') && !seg.contains('=') {
            self.parse_call(seg, start, depth)?;
            return Ok(None);
        }
        self.condition(seg, start).map(|c| Some(Expr::Cond(c)))
    }

    fn condition(&mut self, seg: &str, pos: usize) -> Result<Condition, QueryError> {
        let Some(eq) = seg.find('=') else {
            return Err(err(pos, seg, "expected attr=value or attr=op=value"));
        };
        let ne = eq > 0 && seg.as_bytes().get(eq - 1) == Some(&b'!');
        let attr_raw = seg.get(..if ne { eq - 1 } else { eq }).unwrap_or_default();
        let rest = seg.get(eq + 1..).unwrap_or_default();
        let rest_pos = pos + eq + 1;
        let chain = op_keyword(attr_raw, false).filter(|_| !ne && self.last_attr.is_some());
        let (attr_raw, op, value_raw, value_pos) = if ne {
            (attr_raw, Op::Ne, rest, rest_pos)
        } else if let Some(op) = chain {
            ("", op, rest, rest_pos)
        } else {
            match rest.find('=') {
                Some(j)
                    if rest
                        .bytes()
                        .take(j)
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    let name = rest.get(..j).unwrap_or_default();
                    let value = rest.get(j + 1..).unwrap_or_default();
                    let vpos = rest_pos + j + 1;
                    if name.is_empty() {
                        match value.strip_suffix('*') {
                            Some(prefix) => (attr_raw, Op::StartsWith, prefix, vpos),
                            None => (attr_raw, Op::Eq, value, vpos),
                        }
                    } else {
                        let Some(op) = op_keyword(name, true) else {
                            let tok = format!("={name}=");
                            let msg = format!("unknown operator {tok}, expected one of =eq= =ne= =gt= =ge= =lt= =le= =sw= =ew= =ct=");
                            return Err(err(rest_pos - 1, &tok, msg));
                        };
                        (attr_raw, op, value, vpos)
                    }
                }
                _ => (attr_raw, Op::Eq, rest, rest_pos),
            }
        };
        let attr = if attr_raw.is_empty() {
            match &self.last_attr {
                Some(a) => a.clone(),
                None => return Err(err(pos, seg, "missing attribute name")),
            }
        } else {
            decode(attr_raw, pos)?
        };
        let value = literal(decode(value_raw, value_pos)?, value_pos, value_raw)?;
        self.last_attr = Some(attr.clone());
        Ok(Condition { attr, op, value })
    }

    /// `name(args)` with `self.pos` on the `(`.
    fn parse_call(&mut self, name: &str, pos: usize, depth: usize) -> Result<(), QueryError> {
        let open = self.pos;
        let bytes = self.src.as_bytes();
        let mut end = open + 1;
        while let Some(&b) = bytes.get(end) {
            if b == b')' {
                break;
            }
            if STRUCTURAL.contains(&b) {
                let tok = (b as char).to_string();
                let msg = format!("unexpected '{tok}' in {name}() arguments, expected ')'");
                return Err(err(end, &tok, msg));
            }
            end += 1;
        }
        if end >= bytes.len() {
            return Err(err(open, "(", format!("unbalanced '(' in {name}()")));
        }
        self.pos = end + 1;
        let args_raw = self.src.get(open + 1..end).unwrap_or_default();
        if depth > 0 {
            let msg = format!("{name}() is only allowed at the top level, joined with '&'");
            return Err(err(pos, name, msg));
        }
        self.first_call.get_or_insert(pos);
        // Split on ',' keeping positions; a trailing ',' is dropped and remembered.
        let mut args: Vec<(&str, usize)> = Vec::new();
        let mut at = open + 1;
        for part in args_raw.split(',') {
            args.push((part, at));
            at += part.len() + 1;
        }
        let trailing = args.len() > 1 && args.last().is_some_and(|(a, _)| a.is_empty());
        if trailing {
            args.pop();
        }
        match name {
            "select" | "sort" => self.attribute_call(name, pos, &args, trailing)?,
            "limit" => self.limit_call(pos, open, args_raw, &args, trailing)?,
            _ => {
                let msg =
                    format!("unknown function {name}(), expected select(), sort() or limit()");
                return Err(err(pos, name, msg));
            }
        }
        Ok(())
    }

    /// `select(a,b)` / `sort(+a,-b)`: attribute names (with a direction for `sort`).
    fn attribute_call(
        &mut self,
        name: &str,
        pos: usize,
        args: &[(&str, usize)],
        trailing: bool,
    ) -> Result<(), QueryError> {
        let dup = |what: &str| err(pos, name, format!("duplicate {what}()"));
        let mut out = Vec::with_capacity(args.len());
        for &(raw, apos) in args {
            let (desc, raw, apos) = match raw.as_bytes().first() {
                Some(b'-') if name == "sort" => (true, raw.get(1..).unwrap_or(""), apos + 1),
                Some(b'+') if name == "sort" => (false, raw.get(1..).unwrap_or(""), apos + 1),
                _ => (false, raw, apos),
            };
            if raw.is_empty() {
                let msg = format!("{name}() needs attribute names, found an empty one");
                return Err(err(apos, "", msg));
            }
            out.push((decode(raw, apos)?, desc));
        }
        if name == "sort" {
            if !self.query.sort.is_empty() {
                return Err(dup(name));
            }
            let keys = out
                .into_iter()
                .map(|(attr, descending)| SortKey { attr, descending });
            self.query.sort = keys.collect();
        } else {
            if self.query.select.is_some() {
                return Err(dup(name));
            }
            let mut names: Vec<String> = out.into_iter().map(|(a, _)| a).collect();
            self.query.select = Some(match (names.len(), trailing) {
                (1, false) => Select::Bare(names.pop().unwrap_or_default()),
                _ => Select::Fields(names),
            });
        }
        Ok(())
    }

    /// `limit(end)`, `limit(start,)` or `limit(start,end)`.
    fn limit_call(
        &mut self,
        pos: usize,
        open: usize,
        args_raw: &str,
        args: &[(&str, usize)],
        trailing: bool,
    ) -> Result<(), QueryError> {
        if self.query.limit.is_some() {
            return Err(err(pos, "limit", "duplicate limit()"));
        }
        let bad = || {
            err(
                open + 1,
                args_raw,
                "limit() needs 1 or 2 non-negative integers",
            )
        };
        let num = |s: &str| {
            let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| s.parse::<usize>().ok()).flatten()
        };
        let limit = match (args, trailing) {
            ([(end, _)], false) => Limit {
                start: 0,
                end: Some(num(end).ok_or_else(bad)?),
            },
            ([(start, _)], true) => Limit {
                start: num(start).ok_or_else(bad)?,
                end: None,
            },
            ([(start, _), (end, epos)], false) => {
                let (start, end_n) = (num(start).ok_or_else(bad)?, num(end).ok_or_else(bad)?);
                if end_n < start {
                    return Err(err(*epos, end, "limit(start,end): end before start"));
                }
                Limit {
                    start,
                    end: Some(end_n),
                }
            }
            _ => return Err(bad()),
        };
        self.query.limit = Some(limit);
        Ok(())
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
