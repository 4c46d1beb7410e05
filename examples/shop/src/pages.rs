//! The pre-rendered pages: their keys in the caching table (`home`, `plp/{category}`,
//! `pdp/{product}`), a stored page decoded into templates, and each shard's bounded set of
//! decoded pages. A request reads its page record through the caching table (rendered
//! there on a miss or once stale) and decodes it only when this shard has not seen that
//! version yet: the hot path parses nothing.

use super::counters::Counter;
use super::inject::Live;
use super::state::State;
use super::template::{self, Format, Template};
use super::PAGES;
use microlith::app::{Ctx, Error, Version};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// The three pages of the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Home = 0,
    Plp = 1,
    Pdp = 2,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Home, Kind::Plp, Kind::Pdp];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Home => "home",
            Kind::Plp => "plp",
            Kind::Pdp => "pdp",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Home => "home",
            Kind::Plp => "plp/",
            Kind::Pdp => "pdp/",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Longest id a page is served for (a page key must stay a valid record id).
pub const MAX_ID_BYTES: usize = 1000;

/// A page's key; built on the stack for ids up to 64 bytes.
pub enum Key {
    Inline([u8; 72], u8),
    Heap(String),
}

impl Key {
    /// The key of page `kind` for `id` (ignored for home).
    pub fn new(kind: Kind, id: &str) -> Key {
        let (prefix, id) = (kind.prefix(), if kind == Kind::Home { "" } else { id });
        let len = prefix.len() + id.len();
        if len > 72 {
            return Key::Heap(format!("{prefix}{id}"));
        }
        let mut buf = [0u8; 72];
        buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
        buf[prefix.len()..len].copy_from_slice(id.as_bytes());
        Key::Inline(buf, len as u8)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Key::Inline(buf, len) => std::str::from_utf8(&buf[..*len as usize]).unwrap_or(""),
            Key::Heap(s) => s,
        }
    }
}

/// The page a key names, and the id in it.
pub fn parse_key(key: &str) -> Option<(Kind, &str)> {
    if key == "home" {
        return Some((Kind::Home, ""));
    }
    let (kind, id) = key.split_once('/')?;
    let kind = Kind::from_name(kind).filter(|k| *k != Kind::Home)?;
    (!id.is_empty()).then_some((kind, id))
}

/// A stored page, decoded: the products whose live values it shows, and its templates.
#[derive(Debug)]
pub struct Page {
    pub products: Vec<Box<str>>,
    json: Template,
    html: Template,
}

impl Page {
    pub fn template(&self, format: Format) -> &Template {
        match format {
            Format::Json => &self.json,
            Format::Html => &self.html,
        }
    }

    /// A page record of the caching table (its other fields are for invalidation).
    pub fn decode(body: &[u8]) -> Result<Page, Error> {
        #[derive(Deserialize)]
        struct Stored {
            products: Vec<String>,
            json: template::Stored,
            html: template::Stored,
        }
        let damaged = |e: String| Error::new(500, format!("a pre-rendered page is damaged: {e}"));
        let s: Stored = serde_json::from_slice(body).map_err(|e| damaged(e.to_string()))?;
        let n = s.products.len();
        Ok(Page {
            json: Template::decode(Format::Json, s.json, n).map_err(damaged)?,
            html: Template::decode(Format::Html, s.html, n).map_err(damaged)?,
            products: s.products.into_iter().map(String::into_boxed_str).collect(),
        })
    }
}

/// What a shard keeps between requests: decoded pages, and a buffer for live values.
#[derive(Default)]
pub struct ShardLocal {
    pub decoded: RefCell<Decoded>,
    pub live: RefCell<Vec<Live>>,
}

/// A shard's decoded pages by key, each with the version it was decoded from. Bounded: at
/// `max_decoded_pages` the page decoded longest ago is dropped (it is decoded again from
/// the caching table when it is next asked for).
#[derive(Default)]
pub struct Decoded {
    pages: HashMap<Box<str>, (Version, Rc<Page>)>,
    order: VecDeque<Box<str>>,
}

impl Decoded {
    fn get(&self, key: &str, version: Version) -> Option<Rc<Page>> {
        let (v, page) = self.pages.get(key)?;
        (*v == version).then(|| page.clone())
    }

    fn insert(&mut self, key: &str, version: Version, page: Rc<Page>, bound: usize) {
        if let Some(slot) = self.pages.get_mut(key) {
            *slot = (version, page);
            return;
        }
        while self.pages.len() >= bound.max(1) {
            match self.order.pop_front() {
                Some(old) => self.pages.remove(&old),
                None => break,
            };
        }
        self.pages.insert(key.into(), (version, page));
        self.order.push_back(key.into());
    }
}

/// Page `kind` of `id`: from this shard's decoded pages when the stored version is the one
/// decoded, else decoded from the caching table's record (rendered there if missing or
/// stale). 404 when there is no such category or product.
pub async fn load(state: &State, ctx: &Ctx, kind: Kind, id: &str) -> Result<Rc<Page>, Error> {
    let shard = ctx.shard_id();
    if id.len() > MAX_ID_BYTES {
        state.counters.add(shard, Counter::NotFound);
        return Err(Error::not_found("no such page"));
    }
    let key = Key::new(kind, id);
    let Some(cached) = ctx.table(PAGES)?.get_cached(key.as_str()).await? else {
        state.counters.add(shard, Counter::NotFound);
        return Err(Error::not_found(format!(
            "no {} page for {id:?}",
            kind.name()
        )));
    };
    let local = ctx.local::<ShardLocal>();
    if let (Some(v), Ok(decoded)) = (cached.version(), local.decoded.try_borrow()) {
        if let Some(page) = decoded.get(key.as_str(), v) {
            state.counters.add(shard, Counter::Hit(kind));
            return Ok(page);
        }
    }
    let page = Rc::new(Page::decode(cached.body())?);
    state.counters.add(shard, Counter::Decoded);
    if let (Some(v), Ok(mut decoded)) = (cached.version(), local.decoded.try_borrow_mut()) {
        let bound = state.config.max_decoded_pages;
        decoded.insert(key.as_str(), v, page.clone(), bound);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_page_and_round_trip() {
        assert_eq!(Key::new(Kind::Home, "x").as_str(), "home");
        assert_eq!(Key::new(Kind::Pdp, "p-0042").as_str(), "pdp/p-0042");
        let long = "x".repeat(200);
        assert_eq!(Key::new(Kind::Plp, &long).as_str(), format!("plp/{long}"));
        assert_eq!(parse_key("pdp/p-0042"), Some((Kind::Pdp, "p-0042")));
        assert_eq!(parse_key("plp/a/b"), Some((Kind::Plp, "a/b")));
        assert_eq!(parse_key("home"), Some((Kind::Home, "")));
        for bad in ["home/x", "pdp/", "pdp", "other/x", ""] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn decoded_pages_are_bounded_and_drop_the_oldest() {
        let page = || {
            let empty = serde_json::json!({"text": "", "cuts": []});
            let doc = serde_json::json!({"products": [], "json": empty, "html": empty});
            Rc::new(Page::decode(doc.to_string().as_bytes()).unwrap())
        };
        let v = |n| Version { clock: n, node: 1 };
        let mut d = Decoded::default();
        d.insert("a", v(1), page(), 2);
        d.insert("b", v(1), page(), 2);
        d.insert("a", v(2), page(), 2); // a newer version replaces, in place
        assert!(d.get("a", v(1)).is_none() && d.get("a", v(2)).is_some());
        d.insert("c", v(1), page(), 2);
        assert!(d.get("a", v(2)).is_none(), "the oldest went");
        assert!(d.get("b", v(1)).is_some() && d.get("c", v(1)).is_some());
        assert_eq!(d.pages.len(), 2);
    }
}
