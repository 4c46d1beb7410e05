//! The hot path of a page request, measured: filling a listing's 125 products into its
//! pre-rendered template allocates once (the answer's buffer, sized from the template) and
//! not at all into a buffer that is large enough; reading a live price or stock record
//! allocates nothing. Counted with an allocator that counts this thread's allocations.

#[path = "../src/inject.rs"]
mod inject;
#[allow(dead_code)]
#[path = "../src/live.rs"]
mod live;
#[path = "../src/template.rs"]
mod template;

const PRICE: &str = "Price";
const INVENTORY: &str = "Inventory";

use inject::{fill, Code, Live};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use template::{Builder, Format, What};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// A listing of `n` products, as the PLP renders it (both formats).
fn listing(format: Format, n: usize) -> template::Template {
    let mut b = Builder::new(format);
    b.raw("<!doctype html><ul class=\"products\">");
    for i in 0..n {
        b.raw("<li class=\"product\" data-id=\"p-").num(i as i64);
        b.raw("\" data-price-cents=\"").slot(i, What::Cents);
        b.raw("\" data-stock=\"")
            .slot(i, What::Stock)
            .raw("\"><a>A product name</a> ");
        b.slot(i, What::Dollars)
            .raw(" ")
            .slot(i, What::StockText)
            .raw("</li>");
    }
    b.raw("</ul>");
    b.finish()
}

#[test]
fn filling_a_listing_allocates_only_the_answer() {
    let live: Vec<Live> = (0..125)
        .map(|i| Live {
            cents: Some(199 + i * 7919 % 49801),
            stock: Some(i % 151),
            currency: Code::new("USD"),
        })
        .collect();
    for format in [Format::Html, Format::Json] {
        let page = listing(format, 125);
        let mut out = Vec::new();
        assert_eq!(
            allocations(|| fill(&page, &live, &mut out)),
            1,
            "{format:?}"
        );
        assert!(out.len() > page.static_len());
        let mut again = Vec::with_capacity(out.len() * 2);
        assert_eq!(allocations(|| fill(&page, &live, &mut again)), 0);
        assert_eq!(again, out);
    }
}

#[test]
fn reading_live_records_allocates_nothing() {
    let price = br#"{"id":"p-0042","amount_cents":33991,"currency":"USD"}"#;
    let stock = br#"{"id":"p-0042","quantity":44}"#;
    let mut got = (None, None, None);
    let n = allocations(|| {
        let (cents, currency) = live::price(price);
        got = (cents, currency, live::quantity(stock));
    });
    assert_eq!(n, 0);
    assert_eq!(got, (Some(33991), Code::new("USD"), Some(44)));
}
