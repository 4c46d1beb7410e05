//! The live half of every page: each product's price (`Price`) and stock (`Inventory`),
//! read at request time from the owner's storage on this thread (no hop) and parsed in
//! place (borrowed fields, unknown fields skipped): a write to either table shows on the
//! next request for any page, with nothing to invalidate.

use super::inject::{Code, Live};
use super::{INVENTORY, PRICE};
use microlith::app::{Ctx, Error};
use serde::Deserialize;
use std::borrow::Cow;

/// The live values of `products`, in order, into `out` (cleared first).
pub fn read(ctx: &Ctx, products: &[Box<str>], out: &mut Vec<Live>) -> Result<(), Error> {
    let (prices, stock) = (ctx.table(PRICE)?, ctx.table(INVENTORY)?);
    out.clear();
    out.reserve(products.len());
    for id in products {
        let mut live = Live::default();
        if let Some(r) = prices.get(id)? {
            (live.cents, live.currency) = price(r.body());
        }
        if let Some(r) = stock.get(id)? {
            live.stock = quantity(r.body());
        }
        out.push(live);
    }
    Ok(())
}

/// `amount_cents` and `currency` of a `Price` record; a field that is missing or not of
/// its type is unknown.
pub fn price(body: &[u8]) -> (Option<i64>, Option<Code>) {
    // A string borrowed from the record (owned only when it holds escapes): `Cow` as a
    // field of its own is borrowed, inside an `Option` it would always be copied.
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    #[derive(Deserialize)]
    struct Price<'a> {
        #[serde(default)]
        amount_cents: Option<i64>,
        #[serde(borrow, default)]
        currency: Option<Text<'a>>,
    }
    match serde_json::from_slice::<Price<'_>>(body) {
        Ok(p) => (p.amount_cents, p.currency.and_then(|t| Code::new(&t.0))),
        Err(_) => (None, None),
    }
}

/// `quantity` of an `Inventory` record.
pub fn quantity(body: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Stock {
        #[serde(default)]
        quantity: Option<i64>,
    }
    serde_json::from_slice::<Stock>(body).ok()?.quantity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_fields_are_read_and_odd_ones_are_unknown() {
        let (cents, cur) = price(br#"{"id":"p-0042","amount_cents":33991,"currency":"USD"}"#);
        assert_eq!(cents, Some(33991));
        assert_eq!(cur, Code::new("USD"));
        assert_eq!(price(br#"{"amount_cents":"12"}"#), (None, None));
        assert_eq!(price(br#"{"currency":"EUR"}"#), (None, Code::new("EUR")));
        assert_eq!(quantity(br#"{"id":"x","quantity":44}"#), Some(44));
        assert_eq!(quantity(br#"{"quantity":1.5}"#), None);
        assert_eq!(quantity(b"not json"), None);
    }
}
