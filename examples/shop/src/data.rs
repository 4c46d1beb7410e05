//! The shop's data as `SPEC.md` defines it: integer formulas only, so every implementation
//! seeds the same records. Pure functions; the seed job (`seed.rs`) writes what they give.

use serde_json::{json, Map, Value};

/// Categories `cat-0` … `cat-7`.
pub const CATEGORIES: usize = 8;
/// Products `p-0000` … `p-0999`.
pub const PRODUCTS: usize = 1000;

const CATEGORY_NAMES: [&str; CATEGORIES] = [
    "Kitchen", "Garden", "Office", "Outdoor", "Toys", "Books", "Audio", "Lighting",
];
const ADJECTIVES: [&str; 10] = [
    "Classic", "Compact", "Deluxe", "Eco", "Fresh", "Grand", "Handy", "Modern", "Rustic", "Smart",
];
const NOUNS: [&str; 25] = [
    "Lamp", "Chair", "Kettle", "Rake", "Desk", "Tent", "Kite", "Novel", "Speaker", "Bulb", "Mug",
    "Hose", "Stapler", "Lantern", "Puzzle", "Atlas", "Radio", "Candle", "Pan", "Shovel", "Folder",
    "Stove", "Robot", "Diary", "Headset",
];

pub fn category_id(c: usize) -> String {
    format!("cat-{c}")
}

pub fn product_id(i: usize) -> String {
    format!("p-{i:04}")
}

pub fn product_name(i: usize) -> String {
    format!("{} {} {i}", ADJECTIVES[i % 10], NOUNS[(i / 10) % 25])
}

/// How many reviews product `i` has (0 to 4).
pub fn review_count(i: usize) -> usize {
    i % 5
}

/// Category `c`.
pub fn category(c: usize) -> Map<String, Value> {
    object(json!({ "id": category_id(c), "name": CATEGORY_NAMES[c % CATEGORIES] }))
}

/// Product `i`.
pub fn product(i: usize) -> Map<String, Value> {
    let name = product_name(i);
    let category = CATEGORY_NAMES[i % CATEGORIES];
    object(json!({
        "id": product_id(i),
        "category": category_id(i % CATEGORIES),
        "description": format!("The {name} is part of our {category} range."),
        "name": name,
    }))
}

/// The price of product `i` (table `Price`).
pub fn price(i: usize) -> Map<String, Value> {
    let cents = 199 + (i * 7919) % 49801;
    object(json!({ "id": product_id(i), "amount_cents": cents, "currency": "USD" }))
}

/// The stock of product `i` (table `Inventory`).
pub fn inventory(i: usize) -> Map<String, Value> {
    object(json!({ "id": product_id(i), "quantity": (i * 37) % 151 }))
}

/// Review `j` of product `i`.
pub fn review(i: usize, j: usize) -> Map<String, Value> {
    object(json!({
        "id": format!("r-{i:04}-{j}"),
        "product": product_id(i),
        "rating": 1 + (i + 3 * j) % 5,
        "author": format!("user{}", (i * 13 + j) % 97),
        "text": format!("Review {j} of {}.", product_name(i)),
    }))
}

/// The mean rating times ten, rounded half up; 0 without reviews.
pub fn average_tenths(sum: i64, count: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    (sum * 10 + count / 2) / count
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_42_matches_the_spec() {
        let p = product(42);
        assert_eq!(p["id"], "p-0042");
        assert_eq!(p["category"], "cat-2");
        assert_eq!(p["name"], "Deluxe Desk 42");
        assert_eq!(
            p["description"],
            "The Deluxe Desk 42 is part of our Office range."
        );
        assert_eq!(price(42)["amount_cents"], 33991);
        assert_eq!(inventory(42)["quantity"], 44);
        assert_eq!(review_count(42), 2);
        assert_eq!(review(42, 0)["author"], "user61");
        assert_eq!(review(42, 0)["rating"], 3);
        assert_eq!(review(42, 1)["rating"], 1);
        assert_eq!(average_tenths(4, 2), 20);
    }

    #[test]
    fn averages_round_half_up_and_are_zero_without_reviews() {
        assert_eq!(average_tenths(0, 0), 0);
        assert_eq!(average_tenths(5, 3), 17); // 1.666… → 1.7
        assert_eq!(average_tenths(7, 4), 18); // 1.75 → 1.8
    }

    #[test]
    fn the_first_product_of_category_3_matches_the_spec() {
        assert_eq!(price(3)["amount_cents"], 23956);
        assert_eq!(inventory(3)["quantity"], 111);
        assert_eq!(inventory(0)["quantity"], 0);
    }
}
