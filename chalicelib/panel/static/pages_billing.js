// Billing: balance and runway, adding credit through an enabled gateway, and the payments list.
// The ledger of one UTC month comes with its CSV and a chart of charges per day. The return page
// completes a gateway checkout. Amounts are summed as integer micro-units only.

import { h, replace } from "./dom.js";
import { ApiError, get, post, path, id } from "./api.js";
import {
  alertBox,
  badge,
  dateTime,
  errorText,
  form,
  formatMicros,
  loaded,
  money,
  moneyBarChart,
  pageHeader,
  pagedList,
  pagedTable,
  section,
  table,
} from "./ui.js";

const AMOUNT_PATTERN = /^\d{1,9}(\.\d{1,2})?$/;
const LEDGER_LINES_PER_PAGE = 25;
const PAYMENTS_PER_PAGE = 20;
// The checkout a gateway is about to show, kept for the page it sends the customer back to.
const CHECKOUT_STORAGE_KEY = "lobster_checkout";
const PAYMENT_STATUS_KINDS = { completed: "ok", credited: "ok", pending: "warn", created: "warn", refunded: "bad", reversed: "bad", failed: "bad" };

// ---- months -----------------------------------------------------------------------------

function currentMonth() {
  return new Date().toISOString().slice(0, 7);
}

function shiftMonth(month, delta) {
  const [year, monthNumber] = month.split("-").map(Number);
  const moved = new Date(Date.UTC(year, monthNumber - 1 + delta, 1));
  return moved.toISOString().slice(0, 7);
}

function daysInMonth(month) {
  const [year, monthNumber] = month.split("-").map(Number);
  return new Date(Date.UTC(year, monthNumber, 0)).getUTCDate();
}

// A ledger key starts with the line's own UTC time ("2026-12-04T09:00:00Z#vm#..."): the hour
// a VM charge is for, which can differ from when the line was written.
function lineTime(line) {
  const prefix = (line.key || "").split("#")[0];
  return Number.isNaN(Date.parse(prefix)) ? line.created_at : prefix;
}

// Charges of each UTC day of the month in integer micro-units. Credits are left out.
function dailyCharges(lines, month) {
  const totals = new Array(daysInMonth(month)).fill(0);
  for (const line of lines) {
    if (line.amount.micros >= 0) continue;
    const time = lineTime(line);
    if (!time || time.slice(0, 7) !== month) continue;
    totals[Number(time.slice(8, 10)) - 1] -= line.amount.micros;
  }
  return totals.map((micros, index) => ({ label: `${month}-${String(index + 1).padStart(2, "0")}`, micros }));
}

// ---- summary ----------------------------------------------------------------------------

function stat(label, value) {
  return h("div", {}, h("p", { class: "stat-label" }, label), h("p", { class: "stat" }, value));
}

function runwayText(runway) {
  if (runway.hourly_cost.total.micros === 0) return "No running costs";
  if (runway.balance.micros < 0) return "Credit has run out";
  return `${runway.hours_left} hours`;
}

// A warning once low-credit notices have started or credit is gone; a plain line before that.
function suspensionNotice(runway) {
  const text = `If no credit is added, VMs are suspended around ${dateTime(runway.suspension_at)}.`;
  if (runway.low_credit_notices_sent > 0 || runway.balance.micros < 0) return alertBox(text);
  return h("p", { class: "hint" }, text);
}

function summary(runway) {
  const currency = runway.currency;
  const runsOut = runway.credit_runs_out_at && runway.hourly_cost.total.micros > 0 ? h("p", { class: "hint" }, `At the current cost, credit runs out around ${dateTime(runway.credit_runs_out_at)}.`) : null;
  const suspension = runway.suspension_at ? suspensionNotice(runway) : null;
  return [
    h(
      "div",
      { class: "grid" },
      stat("Balance", h("span", { class: "balance", dataset: { balance: runway.balance.amount } }, money(runway.balance, currency))),
      stat("Cost an hour", money(runway.hourly_cost.total, currency)),
      stat("Credit lasts", runwayText(runway)),
    ),
    runsOut,
    suspension,
  ];
}

// ---- adding credit ----------------------------------------------------------------------

function gatewayCard(gateway, checked) {
  const bounds = `${money(gateway.min_amount)} to ${money(gateway.max_amount)} ${gateway.currency}`;
  const completion = gateway.pays_at_checkout ? "Credited at once" : "Continue on the gateway's page";
  return h(
    "label",
    { class: "choice" },
    h("input", { type: "radio", name: "gateway-choice", value: gateway.id, checked }),
    h("span", { class: "choice-title" }, gateway.name),
    h("span", { class: "choice-facts" }, completion),
    h("span", { class: "choice-facts" }, bounds),
  );
}

// A gateway's checkout page must be https; plain http is accepted only on 127.0.0.1 for local runs.
function checkoutUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch (error) {
    return null;
  }
  if (url.protocol === "https:") return url;
  if (url.protocol === "http:" && url.hostname === "127.0.0.1") return url;
  return null;
}

function returnUrl(gatewayId) {
  return `${location.origin}${location.pathname}#/payments/return?gateway=${encodeURIComponent(gatewayId)}`;
}

function creditForm(gateways, onCredited) {
  const choices = h("div", { class: "cards", role: "radiogroup", "aria-label": "Payment method", dataset: { field: "gateway" } }, gateways.map((gateway, index) => gatewayCard(gateway, index === 0)));
  const result = h("div", { "aria-live": "polite" });
  const first = gateways[0];
  return form({
    submitLabel: "Add credit",
    busyLabel: "Working…",
    className: "wide",
    extra: result,
    fields: [
      { name: "gateway", label: "Payment method", control: choices },
      {
        name: "amount",
        label: `Amount (${first.currency})`,
        inputmode: "decimal",
        autocomplete: "off",
        placeholder: "20.00",
        hint: `From ${money(first.min_amount)} to ${money(first.max_amount)} ${first.currency}.`,
      },
    ],
    onSubmit: async (values) => {
      replace(result);
      const chosen = choices.querySelector("input:checked");
      const gateway = gateways.find((item) => chosen && item.id === chosen.value);
      if (!gateway) throw new ApiError(400, "invalid_request", "Choose a payment method.", "gateway");
      const amount = values.amount.trim();
      // Checked here first: every payment attempt counts against the hourly limit.
      if (!AMOUNT_PATTERN.test(amount)) throw new ApiError(400, "invalid_request", "Enter an amount such as 20 or 20.00, in whole cents.", "amount");
      const started = await post("v1/payments", { gateway: gateway.id, amount, return_url: returnUrl(gateway.id) });
      if (gateway.pays_at_checkout) {
        const runway = await onCredited();
        replace(result, alertBox(`Credit added. Your balance is now ${money(runway.balance, runway.currency)}.`, "success"));
        return null;
      }
      const target = checkoutUrl(started.redirect_url);
      if (!target) throw new ApiError(0, "invalid_redirect", `${gateway.name} returned a checkout address that is not https, so it was not opened. Try again or choose another payment method.`, null);
      sessionStorage.setItem(CHECKOUT_STORAGE_KEY, JSON.stringify({ gateway: gateway.id, checkout: started.payment_id }));
      replace(result, alertBox(`Opening ${gateway.name}…`, "info"));
      location.assign(target.href);
      return null;
    },
  });
}

function creditSection(gateways, onCredited) {
  if (!gateways.length) return section("Add credit", alertBox("No payment method is set up yet. Contact support to add credit.", "info"));
  return section("Add credit", creditForm(gateways, onCredited));
}

// ---- payments ---------------------------------------------------------------------------

function paymentTable(payments) {
  return table(
    [
      { label: "Started", value: (payment) => dateTime(payment.created_at) },
      { label: "Method", value: (payment) => payment.gateway },
      { label: "Requested", value: (payment) => `${money(payment.requested)} ${payment.currency}` },
      { label: "Credited", value: (payment) => `${money(payment.credited)} ${payment.currency}` },
      { label: "Status", value: (payment) => badge(payment.status, PAYMENT_STATUS_KINDS[payment.status] || "") },
      { label: "Notes", value: (payment) => (payment.flags.length ? payment.flags.join(", ") : "") },
    ],
    payments,
    { empty: "No payments yet." },
  );
}

function paymentsList() {
  return pagedList(
    async (cursor) => {
      const page = await get(path("v1/payments", { limit: PAYMENTS_PER_PAGE, cursor }));
      return { items: page.payments, cursor: page.next_cursor };
    },
    paymentTable,
  );
}

// ---- ledger -----------------------------------------------------------------------------

function ledgerTable(lines, currency) {
  return pagedTable(
    [
      { label: "Time", value: (line) => dateTime(lineTime(line)) },
      { label: "Description", value: (line) => line.description },
      { label: "Amount", value: (line) => `${money(line.amount)} ${currency}` },
    ],
    [...lines].reverse(),
    { size: LEDGER_LINES_PER_PAGE, empty: "No charges or credits in this month." },
  );
}

function ledgerMonth(ledger, currency) {
  const days = dailyCharges(ledger.lines, ledger.month);
  const charged = days.reduce((sum, day) => sum + day.micros, 0);
  const csv = h("a", { class: "button", href: path("v1/ledger.csv", { month: ledger.month }), download: `lobster-statement-${ledger.month}.csv` }, "Download CSV");
  return [
    h(
      "div",
      { class: "grid" },
      stat("Charges this month", `${formatMicros(charged)} ${currency}`),
      stat("Month total, charges and credits", `${money(ledger.total)} ${currency}`),
    ),
    h("div", { class: "button-row ledger-actions" }, csv),
    moneyBarChart(days, { title: `Charges per UTC day, ${ledger.month} (${currency})`, currency }),
    h("h3", {}, "Lines"),
    ledgerTable(ledger.lines, currency),
  ];
}

function ledgerSection(currency) {
  let month = currentMonth();
  const body = h("div", { class: "ledger-month" });
  const picker = h("input", { type: "month", id: "ledger-month", name: "month", value: month, max: currentMonth(), required: true });
  const previous = h("button", { type: "button" }, "Previous month");
  const next = h("button", { type: "button" }, "Next month");

  function show(chosen) {
    month = chosen;
    picker.value = month;
    next.disabled = month >= currentMonth();
    replace(body, loaded(() => get(path("v1/ledger", { month })), (ledger) => ledgerMonth(ledger, currency)));
  }

  previous.addEventListener("click", () => show(shiftMonth(month, -1)));
  next.addEventListener("click", () => show(shiftMonth(month, 1)));
  picker.addEventListener("change", () => {
    if (/^\d{4}-\d{2}$/.test(picker.value)) show(picker.value);
  });
  show(month);

  const controls = h("div", { class: "month-picker" }, previous, h("div", { class: "field" }, h("label", { for: "ledger-month" }, "Month (UTC)"), picker), next);
  return section("Ledger", controls, body);
}

// ---- pages ------------------------------------------------------------------------------

export async function billing({ session, refreshSession }) {
  const [runway, gatewayList] = await Promise.all([get("v1/account/runway"), get("v1/payments/gateways")]);
  const summaryHolder = h("div", {}, summary(runway));
  const paymentsHolder = h("div", {}, paymentsList());

  async function onCredited() {
    const fresh = await get("v1/account/runway");
    replace(summaryHolder, summary(fresh));
    replace(paymentsHolder, paymentsList());
    refreshSession().catch(() => null);
    return fresh;
  }

  return h(
    "div",
    {},
    pageHeader("Billing"),
    section("Balance", summaryHolder),
    creditSection(gatewayList.gateways, onCredited),
    section("Payments", paymentsHolder),
    ledgerSection(session.currency),
  );
}

function storedCheckout() {
  try {
    return JSON.parse(sessionStorage.getItem(CHECKOUT_STORAGE_KEY) || "null");
  } catch (error) {
    return null;
  }
}

function captureResult(answer) {
  const captured = answer.captures.filter((capture) => capture.status === "completed");
  if (captured.length) return alertBox("Payment received. The credit is on your account.", "success");
  const statuses = answer.captures.map((capture) => capture.status).join(", ") || "no capture yet";
  return alertBox(`The gateway reports: ${statuses}. The credit is added when the payment completes.`, "info");
}

async function returnBody(gateway, checkout, refreshSession) {
  if (!gateway) return alertBox("This page has no payment to show. Start a payment from Billing.", "info");
  if (!gateway.capture_on_return) {
    return alertBox(`${gateway.name} confirms the payment to Lobster directly. The credit appears on the Billing page once it is confirmed, usually within a minute.`, "info");
  }
  if (!checkout) return alertBox("The payment to capture is not known. If you paid, the credit appears on the Billing page once the gateway confirms it.");
  try {
    const answer = await post(`v1/payments/${id(gateway.id)}/${id(checkout)}/capture`);
    await refreshSession().catch(() => null);
    return captureResult(answer);
  } catch (error) {
    return alertBox(`The payment could not be completed: ${errorText(error)}`);
  }
}

export async function paymentReturn({ query, refreshSession }) {
  const stored = storedCheckout();
  sessionStorage.removeItem(CHECKOUT_STORAGE_KEY);
  const gatewayId = query.gateway || (stored && stored.gateway);
  const fromStorage = stored && stored.gateway === gatewayId ? stored.checkout : null;
  // PayPal adds the order id as "token" to the address it returns to.
  const checkout = query.checkout || query.token || fromStorage;

  const gateways = (await get("v1/payments/gateways")).gateways;
  const gateway = gateways.find((item) => item.id === gatewayId) || null;
  const result = await returnBody(gateway, checkout, refreshSession);
  return h(
    "div",
    {},
    pageHeader("Payment"),
    section("Result", result, h("p", {}, h("a", { href: "#/billing" }, "Back to Billing"))),
    section("Recent payments", paymentsList()),
  );
}
