//! Path patterns of component resources: literal segments, `:name` parameters (one segment
//! each) and a final `*name` that takes the rest of the path. `/product/:id` matches
//! `/product/p1` with `id = "p1"`; `/files/*rest` matches `/files/a/b` with `rest = "a/b"`.
//! Parameters are percent-decoded; a parameter that does not decode fails the match.

use crate::query::percent::percent_decode;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

/// A parsed path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

/// Most segments a pattern may have.
const MAX_SEGMENTS: usize = 32;

impl Pattern {
    /// Parses a pattern; the message says what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("path pattern {text:?} must start with '/'"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(name) = part.strip_prefix(':') {
                Segment::Param(param_name(text, name)?)
            } else if let Some(name) = part.strip_prefix('*') {
                if i + 1 != parts.len() {
                    return Err(format!("in {text:?}, *{name} must be the last segment"));
                }
                Segment::Rest(param_name(text, name)?)
            } else if part.is_empty() {
                return Err(format!("path pattern {text:?} has an empty segment"));
            } else {
                Segment::Literal(part.to_string())
            };
            segments.push(seg);
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "path pattern {text:?} has more than {MAX_SEGMENTS} segments"
            ));
        }
        Ok(Pattern {
            text: text.to_string(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first segment when it is a literal: routes are indexed by it.
    pub fn first_literal(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(l)) => Some(l),
            _ => None,
        }
    }

    /// The parameters of `path` if it matches (`path` without its query string).
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let mut params = Vec::new();
        let mut parts = if rest.is_empty() { None } else { Some(rest) };
        for seg in &self.segments {
            let part = parts?;
            let (head, tail) = match part.split_once('/') {
                Some((h, t)) => (h, Some(t)),
                None => (part, None),
            };
            match seg {
                Segment::Literal(l) => {
                    if head != l {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if head.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), percent_decode(head).ok()?.into_owned()));
                }
                Segment::Rest(name) => {
                    params.push((name.clone(), percent_decode(part).ok()?.into_owned()));
                    return Some(params);
                }
            }
            parts = tail;
        }
        // A trailing slash is the same resource.
        match parts {
            None | Some("") => Some(params),
            Some(_) => None,
        }
    }
}

fn param_name(text: &str, name: &str) -> Result<String, String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "in {text:?}, parameter names are letters, digits and '_'"
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn params(p: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::parse(p).unwrap().matches(path)
    }

    #[test]
    fn literals_params_and_rest_match_and_decode() {
        assert_eq!(params("/catalog", "/catalog"), Some(vec![]));
        assert_eq!(params("/catalog", "/catalog/"), Some(vec![]));
        assert_eq!(params("/catalog", "/catalogs"), None);
        assert_eq!(params("/catalog", "/catalog/x"), None);
        assert_eq!(
            params("/product/:id", "/product/a%20b"),
            Some(vec![("id".into(), "a b".into())])
        );
        assert_eq!(params("/product/:id", "/product/"), None);
        assert_eq!(params("/product/:id", "/product"), None);
        assert_eq!(
            params("/files/*rest", "/files/a/b/c"),
            Some(vec![("rest".into(), "a/b/c".into())])
        );
        assert_eq!(params("/", "/"), Some(vec![]));
        assert_eq!(params("/product/:id", "/product/%zz"), None);
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for bad in ["catalog", "/a//b", "/*rest/more", "/:", "/:a-b", "/x/*"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
