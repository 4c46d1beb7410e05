//! A pre-rendered page in one format (JSON or HTML): its static text, rendered once, with
//! cuts where a product's live price or stock goes. A request copies the text between the
//! cuts and writes each slot's value (`inject.rs`): no parsing, no search for markers.
//!
//! In the caching table a template is `{"text": "...", "cuts": [at, code, at, code, ...]}`:
//! `at` is a byte offset into `text` and `code` is `product * 8 + what`, `product` indexing
//! the page's list of products. `decode` checks every cut, so a damaged record is an error,
//! never a panic or an out-of-bounds copy.

use serde::Deserialize;
use serde_json::{json, Value};

/// The formats a page is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
}

/// The live value a slot shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// `amount_cents` as a number.
    Cents = 0,
    /// `quantity` as a number.
    Stock = 1,
    /// `currency` (a JSON string, or HTML text).
    Currency = 2,
    /// The price as dollars and cents: `$339.91`.
    Dollars = 3,
    /// The stock for people: `44 in stock`, `out of stock`.
    StockText = 4,
}

impl What {
    fn from_code(code: u64) -> Option<What> {
        Some(match code {
            0 => What::Cents,
            1 => What::Stock,
            2 => What::Currency,
            3 => What::Dollars,
            4 => What::StockText,
            _ => return None,
        })
    }
}

/// One place where a live value goes: which product of the page, and what of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub product: u32,
    pub what: What,
}

/// A page in one format: static text and the cuts where slots go, in text order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub format: Format,
    text: String,
    cuts: Vec<(u32, Slot)>,
}

impl Template {
    /// The text before each slot, with the slot; then the text after the last slot.
    pub fn parts(&self) -> impl Iterator<Item = (&[u8], Option<Slot>)> + '_ {
        let bytes = self.text.as_bytes();
        let mut from = 0usize;
        let cuts = self.cuts.iter().map(|&(at, s)| (at as usize, Some(s)));
        cuts.chain(std::iter::once((bytes.len(), None)))
            .map(move |(at, slot)| {
                let part = &bytes[from..at];
                from = at;
                (part, slot)
            })
    }

    /// Bytes of static text.
    pub fn static_len(&self) -> usize {
        self.text.len()
    }

    /// How many slots the page has.
    pub fn slots(&self) -> usize {
        self.cuts.len()
    }

    /// The template as it is stored in the caching table.
    pub fn encode(&self) -> Value {
        let mut cuts = Vec::with_capacity(self.cuts.len() * 2);
        for &(at, s) in &self.cuts {
            cuts.push(u64::from(at));
            cuts.push(u64::from(s.product) * 8 + s.what as u64);
        }
        json!({ "text": self.text, "cuts": cuts })
    }

    /// A stored template, checked: every cut within the text and in order, every slot a
    /// known kind for one of the page's `products`.
    pub fn decode(format: Format, stored: Stored, products: usize) -> Result<Template, String> {
        if !stored.cuts.len().is_multiple_of(2) {
            return Err("a template's cuts come in pairs".into());
        }
        let mut cuts = Vec::with_capacity(stored.cuts.len() / 2);
        let mut last = 0u64;
        for pair in stored.cuts.chunks_exact(2) {
            let (at, code) = (pair[0], pair[1]);
            if at < last || at > stored.text.len() as u64 {
                return Err(format!("a template cut at {at} is out of order or bounds"));
            }
            let what = What::from_code(code % 8).ok_or("a template slot has no known kind")?;
            let product = code / 8;
            if product >= products as u64 {
                return Err(format!(
                    "a template slot names product {product} of {products}"
                ));
            }
            last = at;
            cuts.push((
                at as u32,
                Slot {
                    product: product as u32,
                    what,
                },
            ));
        }
        Ok(Template {
            format,
            text: stored.text,
            cuts,
        })
    }
}

/// A template as read from the caching table.
#[derive(Debug, Deserialize)]
pub struct Stored {
    text: String,
    cuts: Vec<u64>,
}

/// Builds a template: static text (escaped for the format where it is data) and slots.
pub struct Builder {
    format: Format,
    text: String,
    cuts: Vec<(u32, Slot)>,
}

impl Builder {
    pub fn new(format: Format) -> Builder {
        Builder {
            format,
            text: String::with_capacity(4096),
            cuts: Vec::new(),
        }
    }

    /// Markup or JSON punctuation, as it is.
    pub fn raw(&mut self, s: &str) -> &mut Builder {
        self.text.push_str(s);
        self
    }

    /// Data: a quoted JSON string, or HTML-escaped text.
    pub fn text(&mut self, s: &str) -> &mut Builder {
        match self.format {
            Format::Json => {
                let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
                self.text.push_str(&quoted);
            }
            Format::Html => escape_html(s, &mut self.text),
        }
        self
    }

    /// An integer.
    pub fn num(&mut self, n: i64) -> &mut Builder {
        self.text.push_str(&n.to_string());
        self
    }

    /// A live value of the page's product `product`.
    pub fn slot(&mut self, product: usize, what: What) -> &mut Builder {
        let slot = Slot {
            product: product as u32,
            what,
        };
        self.cuts.push((self.text.len() as u32, slot));
        self
    }

    pub fn finish(self) -> Template {
        Template {
            format: self.format,
            text: self.text,
            cuts: self.cuts,
        }
    }
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape_html(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Template {
        let mut b = Builder::new(Format::Html);
        b.raw("<li data-c=\"").slot(0, What::Cents).raw("\">");
        b.text("a<b").slot(1, What::StockText).raw("</li>");
        b.finish()
    }

    #[test]
    fn a_template_survives_its_stored_form() {
        let t = sample();
        let stored: Stored = serde_json::from_value(t.encode()).unwrap();
        assert_eq!(Template::decode(Format::Html, stored, 2).unwrap(), t);
        let parts: Vec<_> = t.parts().map(|(p, s)| (p.to_vec(), s)).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].0, b"\">a&lt;b");
        assert_eq!(parts[2], (b"</li>".to_vec(), None));
    }

    #[test]
    fn damaged_templates_are_refused() {
        let bad = |v: Value, products| {
            let stored: Stored = serde_json::from_value(v).unwrap();
            Template::decode(Format::Json, stored, products).is_err()
        };
        assert!(bad(json!({"text": "ab", "cuts": [1]}), 1));
        assert!(bad(json!({"text": "ab", "cuts": [3, 0]}), 1));
        assert!(bad(json!({"text": "ab", "cuts": [2, 0, 1, 0]}), 1));
        assert!(bad(json!({"text": "ab", "cuts": [1, 7]}), 1));
        assert!(bad(json!({"text": "ab", "cuts": [1, 8]}), 1));
        assert!(!bad(json!({"text": "ab", "cuts": [1, 8]}), 2));
    }
}
