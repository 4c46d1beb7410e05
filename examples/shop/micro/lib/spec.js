// The shop's data, computed from the integer formulas of examples/shop/SPEC.md.
// Pure functions: seed.js writes what they return; nothing else reads them.
'use strict';

const CATEGORY_NAMES = ['Kitchen', 'Garden', 'Office', 'Outdoor', 'Toys', 'Books', 'Audio', 'Lighting'];
const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Fresh', 'Grand', 'Handy', 'Modern', 'Rustic', 'Smart'];
const NOUNS = [
  'Lamp', 'Chair', 'Kettle', 'Rake', 'Desk', 'Tent', 'Kite', 'Novel', 'Speaker', 'Bulb',
  'Mug', 'Hose', 'Stapler', 'Lantern', 'Puzzle', 'Atlas', 'Radio', 'Candle', 'Pan', 'Shovel',
  'Folder', 'Stove', 'Robot', 'Diary', 'Headset',
];
const PRODUCT_COUNT = 1000;

const pad4 = (i) => String(i).padStart(4, '0');
const productId = (i) => `p-${pad4(i)}`;

function categories() {
  return CATEGORY_NAMES.map((name, c) => ({ id: `cat-${c}`, name }));
}

function productName(i) {
  return `${ADJECTIVES[i % 10]} ${NOUNS[Math.floor(i / 10) % 25]} ${i}`;
}

function product(i) {
  const name = productName(i);
  const category = CATEGORY_NAMES[i % 8];
  return {
    id: productId(i),
    category: `cat-${i % 8}`,
    name,
    description: `The ${name} is part of our ${category} range.`,
  };
}

function price(i) {
  return { id: productId(i), amount_cents: 199 + ((i * 7919) % 49801), currency: 'USD' };
}

function inventory(i) {
  return { id: productId(i), quantity: (i * 37) % 151 };
}

function reviews(i) {
  const name = productName(i);
  const out = [];
  for (let j = 0; j < i % 5; j++) {
    out.push({
      id: `r-${pad4(i)}-${j}`,
      product: productId(i),
      rating: 1 + ((i + 3 * j) % 5),
      author: `user${(i * 13 + j) % 97}`,
      text: `Review ${j} of ${name}.`,
    });
  }
  return out;
}

// Every row of every table, as plain objects.
function all() {
  const range = Array.from({ length: PRODUCT_COUNT }, (_, i) => i);
  return {
    categories: categories(),
    products: range.map(product),
    prices: range.map(price),
    inventory: range.map(inventory),
    reviews: range.flatMap(reviews),
  };
}

module.exports = { all, PRODUCT_COUNT };
