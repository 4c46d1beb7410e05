#!/usr/bin/env python3
"""The shop's pages as examples/shop/SPEC.md defines them, computed here from the formulas
alone, so every system's answers can be compared with something none of them produced.

    expected.py home | plp CATEGORY_ID | pdp PRODUCT_ID     (prints the page's JSON)
"""
import json
import sys

CATEGORY_NAMES = ["Kitchen", "Garden", "Office", "Outdoor", "Toys", "Books", "Audio", "Lighting"]
ADJECTIVES = ["Classic", "Compact", "Deluxe", "Eco", "Fresh", "Grand", "Handy", "Modern", "Rustic", "Smart"]
NOUNS = ["Lamp", "Chair", "Kettle", "Rake", "Desk", "Tent", "Kite", "Novel", "Speaker", "Bulb", "Mug",
         "Hose", "Stapler", "Lantern", "Puzzle", "Atlas", "Radio", "Candle", "Pan", "Shovel", "Folder",
         "Stove", "Robot", "Diary", "Headset"]
PRODUCTS = 1000


def name(i):
    return f"{ADJECTIVES[i % 10]} {NOUNS[(i // 10) % 25]} {i}"


def summary(i):
    return {"id": f"p-{i:04}", "name": name(i), "price_cents": 199 + (i * 7919) % 49801,
            "stock": (i * 37) % 151}


def category(c):
    return {"id": f"cat-{c}", "name": CATEGORY_NAMES[c]}


def home():
    return {"categories": [dict(category(c), count=PRODUCTS // 8) for c in range(8)],
            "featured": [summary(i) for i in range(8)]}


def plp(cat_id):
    c = int(cat_id.removeprefix("cat-"))
    return {"category": category(c), "products": [summary(i) for i in range(c, PRODUCTS, 8)]}


def pdp(product_id):
    i = int(product_id.removeprefix("p-"))
    reviews = [{"id": f"r-{i:04}-{j}", "rating": 1 + (i + 3 * j) % 5, "author": f"user{(i * 13 + j) % 97}",
                "text": f"Review {j} of {name(i)}."} for j in range(i % 5)]
    count = len(reviews)
    total = sum(r["rating"] for r in reviews)
    page = dict(summary(i))
    page.update({
        "description": f"The {name(i)} is part of our {CATEGORY_NAMES[i % 8]} range.",
        "category": category(i % 8),
        "currency": "USD",
        "rating": {"count": count, "average_tenths": (total * 10 + count // 2) // count if count else 0},
        "reviews": reviews,
    })
    return page


if __name__ == "__main__":
    kind = sys.argv[1]
    page = {"home": lambda: home(), "plp": lambda: plp(sys.argv[2]), "pdp": lambda: pdp(sys.argv[2])}[kind]()
    json.dump(page, sys.stdout, indent=1)
    print()
