// Price, tax and risk-score one order. Run once per job by
//   isolate batch orders.jsonl --script examples/batch/transform.js -o out.jsonl
// The job's context gives the global `order`; the value of the last
// expression (the object built below) is the job's result. A malformed
// order throws, and the batch records it with status "error" and this stack.

const VAT = { DE: 0.19, FR: 0.20, NL: 0.21, IT: 0.22, ES: 0.21, BE: 0.21, AT: 0.20, PL: 0.23, SE: 0.25 };
const REDUCED_VAT = { books: 0.07, grocery: 0.07 };  // simplified: one reduced rate everywhere
const COUPONS = {
  WELCOME10: { percent: 10, firstOrderOnly: true },
  SPRING15: { percent: 15, minSubtotal: 50 },
  VIP20: { percent: 20, minSubtotal: 200 },
  FREESHIP: { freeShipping: true },
};

function cents(euros) { return Math.round(euros * 100); }

function validate(o) {
  if (o.currency !== "EUR") throw new TypeError(`order ${o.order_id}: unsupported currency ${JSON.stringify(o.currency)}`);
  if (!(o.country in VAT)) throw new RangeError(`order ${o.order_id}: no VAT rate for ${o.country}`);
  for (const line of o.lines) {
    if (!Number.isInteger(line.qty) || line.qty <= 0)
      throw new RangeError(`order ${o.order_id}: ${line.sku} has quantity ${line.qty}`);
  }
}

function shippingCents(o, weightKg, subtotal) {
  if (o.shipping === "pickup") return 0;
  const base = o.shipping === "express" ? 990 : 490;
  const heavy = weightKg > 5 ? cents(2.5 * Math.ceil((weightKg - 5) / 5)) : 0;
  const free = o.shipping === "standard" && subtotal >= 5000;  // free standard shipping from 50 EUR
  return free ? 0 : base + heavy;
}

function riskScore(o, total) {
  const reasons = [];
  if (o.first_order && total > 50000) reasons.push("first order over 500 EUR");
  if (!o.billing_matches_shipping) reasons.push("billing and shipping addresses differ");
  if (o.payment === "giftcard" && total > 20000) reasons.push("large gift-card payment");
  if (o.shipping === "express" && o.lines.some(l => l.category === "electronics" && l.unit_price > 300))
    reasons.push("express high-value electronics");
  const hour = Number(o.created_at.slice(11, 13));
  if (hour < 5) reasons.push("placed between midnight and 5am");
  const score = Math.min(100, reasons.length * 30 + (total > 100000 ? 20 : 0));
  return { score, reasons };
}

function price(o) {
  validate(o);
  let subtotal = 0, weight = 0;
  const byCategory = {};
  for (const line of o.lines) {
    const amount = cents(line.unit_price) * line.qty;
    subtotal += amount;
    weight += line.weight_kg * line.qty;
    byCategory[line.category] = (byCategory[line.category] || 0) + amount;
  }
  const coupon = o.coupon ? COUPONS[o.coupon] : undefined;
  const notes = [];
  let discount = 0, freeShipping = false;
  if (o.coupon && !coupon) notes.push(`coupon ${o.coupon} rejected: unknown or expired`);
  else if (coupon) {
    if (coupon.firstOrderOnly && !o.first_order) notes.push(`coupon ${o.coupon} rejected: first orders only`);
    else if (coupon.minSubtotal && subtotal < cents(coupon.minSubtotal)) notes.push(`coupon ${o.coupon} rejected: below ${coupon.minSubtotal} EUR`);
    else if (coupon.freeShipping) freeShipping = true;
    else discount = Math.round(subtotal * coupon.percent / 100);
  }
  // Prices are gross (VAT included); the discount is spread over categories pro rata.
  let vat = 0;
  for (const [category, amount] of Object.entries(byCategory)) {
    const rate = REDUCED_VAT[category] ?? VAT[o.country];
    const net = (amount - discount * amount / subtotal) / (1 + rate);
    vat += (amount - discount * amount / subtotal) - net;
  }
  const shipping = freeShipping ? 0 : shippingCents(o, weight, subtotal - discount);
  const total = subtotal - discount + shipping;
  return {
    order_id: o.order_id,
    customer_id: o.customer_id,
    country: o.country,
    items: o.lines.reduce((n, l) => n + l.qty, 0),
    subtotal_cents: subtotal,
    discount_cents: discount,
    shipping_cents: shipping,
    vat_cents: Math.round(vat),
    total_cents: total,
    weight_kg: Math.round(weight * 10) / 10,
    revenue_by_category: byCategory,
    risk: riskScore(o, total),
    notes,
  };
}

price(order);
