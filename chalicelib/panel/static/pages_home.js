// The customer's dashboard: balance and hourly cost, how long the credit lasts and what the
// credit life-cycle does next, the VMs, announcements and bandwidth against each region's pool.
// Money is shown from the API's strings, so nothing here does arithmetic on amounts.

import { h } from "./dom.js";
import { get } from "./api.js";
import { badge, dateTime, loaded, meter, money, pageHeader, pagedTable, section } from "./ui.js";

const HOURS_PER_DAY = 24;
// Below this many hours the runway is given in hours rather than days.
const RUNWAY_HOURS_SHOWN = 48;
const VMS_PER_PAGE = 10;

export function dashboard() {
  return h(
    "div",
    { class: "dashboard" },
    pageHeader("Dashboard", h("a", { class: "button primary", href: "#/vms/new" }, "Create VM")),
    loaded(() => get("v1/announcements"), renderAnnouncements),
    loaded(loadOverview, renderOverview),
    section("Bandwidth this month", loaded(loadBandwidth, renderBandwidth)),
  );
}

// Region and plan names come from the catalog. Without it, the ids are shown instead.
function loadCatalog() {
  return get("v1/catalog").catch(() => ({ regions: [], plans: [] }));
}

async function loadOverview() {
  const [account, runway, vms, catalog] = await Promise.all([get("v1/account"), get("v1/account/runway"), get("v1/vms"), loadCatalog()]);
  return { account, runway, vms: vms.vms, catalog };
}

async function loadBandwidth() {
  const [usage, catalog] = await Promise.all([get("v1/bandwidth"), loadCatalog()]);
  return { usage, regionNames: namesById(catalog.regions) };
}

function renderOverview({ account, runway, vms, catalog }) {
  return [
    gettingStarted(account, vms),
    summaryCards(account, runway),
    section("Credit outlook", runwayFacts(runway), costBreakdown(runway)),
    section("Your VMs", vmTable(vms, catalog, account.currency)),
  ];
}

// ---- getting started --------------------------------------------------------------------

function gettingStarted(account, vms) {
  const steps = [
    { done: account.email_verified, text: "Verify your e-mail address", href: "#/verify", action: "Verify e-mail" },
    { done: account.balance.micros > 0, text: "Add prepaid credit", href: "#/billing", action: "Add credit" },
    { done: vms.length > 0, text: "Create your first VM", href: "#/vms/new", action: "Create VM" },
  ];
  if (steps.every((step) => step.done)) return null;
  const items = steps.map((step) =>
    h(
      "li",
      { class: step.done ? "step step-done" : "step" },
      h("span", { class: "step-text" }, step.text),
      step.done ? badge("Done", "ok") : h("a", { class: "button", href: step.href }, step.action),
    ),
  );
  return section("Get started", h("p", {}, "Three steps to a running VM. Each VM is billed from your credit for every hour or part of an hour it exists."), h("ol", { class: "steps" }, items));
}

// ---- balance and runway -----------------------------------------------------------------

function summaryCards(account, runway) {
  const currency = account.currency;
  return h(
    "div",
    { class: "grid summary" },
    statCard("Balance", money(account.balance, currency), account.balance.micros < 0 ? "stat-negative" : ""),
    statCard("Hourly cost", money(account.hourly_cost, currency)),
    statCard("Credit lasts", creditLasts(runway)),
  );
}

function creditLasts(runway) {
  if (runway.hours_left === null) return "No hourly charges";
  if (runway.balance.micros < 0) return "Credit used up";
  return `About ${roundDuration(runway.hours_left)}`;
}

function statCard(label, value, extraClass = "") {
  return h("section", { class: "card" }, h("h2", { class: "stat-label" }, label), h("p", { class: `stat ${extraClass}` }, value));
}

function duration(hours) {
  if (hours < RUNWAY_HOURS_SHOWN) return hours === 1 ? "1 hour" : `${hours} hours`;
  const days = Math.floor(hours / HOURS_PER_DAY);
  const rest = hours % HOURS_PER_DAY;
  const dayText = `${days} days`;
  return rest === 0 ? dayText : `${dayText} and ${rest === 1 ? "1 hour" : `${rest} hours`}`;
}

// The runway in whole days once it is longer than RUNWAY_HOURS_SHOWN, for the summary card.
function roundDuration(hours) {
  return hours < RUNWAY_HOURS_SHOWN ? duration(hours) : `${Math.floor(hours / HOURS_PER_DAY)} days`;
}

function runwayFacts(runway) {
  const currency = runway.currency;
  const items = [];
  if (runway.hours_left === null) {
    items.push("Nothing on your account is billed by the hour right now, so your credit does not run out.");
  } else if (runway.balance.micros < 0) {
    items.push(`Your balance is ${money(runway.balance, currency)}, below zero. Add credit to keep your VMs running.`);
  } else {
    items.push(`At ${money(runway.hourly_cost.total, currency)} per hour, your credit lasts about ${duration(runway.hours_left)} and runs out around ${dateTime(runway.credit_runs_out_at)}.`);
  }
  if (runway.low_credit_notices_sent > 0) {
    const count = runway.low_credit_notices_sent;
    items.push(`We have sent ${count} low-credit ${count === 1 ? "e-mail" : "e-mails"} so far.`);
  }
  if (runway.next_low_credit_notice_at) {
    items.push(`The next low-credit e-mail goes out around ${dateTime(runway.next_low_credit_notice_at)}.`);
  }
  if (runway.suspension_at) {
    items.push(`Without more credit, your VMs are stopped and suspended around ${dateTime(runway.suspension_at)}.`);
  }
  if (runway.termination_at) {
    items.push(`If the balance stays unpaid, your VMs and images are deleted around ${dateTime(runway.termination_at)}.`);
  }
  const estimate = runway.hours_left === null ? null : h("p", { class: "hint" }, "These times are estimates that assume your VMs, images and bandwidth use stay as they are today.");
  const addCredit = runway.hours_left === null ? null : h("p", {}, h("a", { class: "button", href: "#/billing" }, "Add credit"));
  return [h("ul", { class: "runway" }, items.map((text) => h("li", {}, text))), estimate, addCredit];
}

function costBreakdown(runway) {
  if (runway.hours_left === null) return null;
  const currency = runway.currency;
  const cost = runway.hourly_cost;
  return h(
    "div",
    { class: "cost-breakdown" },
    h("h3", {}, "Cost per hour"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "VMs"),
      h("dd", {}, money(cost.vms, currency)),
      h("dt", {}, "Image storage"),
      h("dd", {}, money(cost.storage, currency)),
      h("dt", {}, "Bandwidth above the pools (estimate)"),
      h("dd", {}, money(cost.bandwidth_overage, currency)),
      h("dt", {}, "Total"),
      h("dd", { class: "cost-total" }, money(cost.total, currency)),
    ),
  );
}

// ---- VMs --------------------------------------------------------------------------------

function vmTable(vms, catalog, currency) {
  if (!vms.length) {
    return h("div", { class: "empty-state" }, h("p", {}, "You have no VMs yet."), h("a", { class: "button primary", href: "#/vms/new" }, "Create your first VM"));
  }
  const regionNames = namesById(catalog.regions);
  const planNames = namesById(catalog.plans);
  const columns = [
    { label: "Name", value: (vm) => h("a", { href: `#/vms/${encodeURIComponent(vm.id)}` }, vm.name) },
    { label: "State", value: vmState },
    { label: "Region", value: (vm) => regionNames.get(vm.region) || vm.region },
    { label: "Plan", value: (vm) => planNames.get(vm.plan) || vm.plan },
    { label: "Price per hour", value: (vm) => money(vm.price_hourly, currency) },
  ];
  return pagedTable(columns, vms, { size: VMS_PER_PAGE });
}

function namesById(items) {
  return new Map((items || []).map((item) => [item.id, item.name || item.id]));
}

function vmState(vm) {
  if (vm.suspended && vm.suspended !== "no") return badge("suspended", "bad");
  if (vm.state === "active") return badge(vm.power ? `active, ${vm.power}` : "active", "ok");
  if (vm.state === "error") return badge("error", "bad");
  return badge(vm.state, "warn");
}

// ---- announcements ----------------------------------------------------------------------

function renderAnnouncements({ announcements }) {
  if (!announcements.length) return null;
  return h(
    "section",
    { class: "announcements", "aria-label": "Announcements" },
    announcements.map((item) =>
      h(
        "article",
        { class: `announcement announcement-${item.level}` },
        h("h2", {}, item.title),
        h("p", { class: "announcement-body" }, item.body),
        h("p", { class: "message-meta" }, `${item.level} · since ${dateTime(item.starts_at)}${item.ends_at ? ` · until ${dateTime(item.ends_at)}` : ""}`),
      ),
    ),
  );
}

// ---- bandwidth --------------------------------------------------------------------------

function renderBandwidth({ usage, regionNames }) {
  if (!usage.regions.length) {
    return h("p", { class: "empty" }, "No bandwidth used this month. Each VM adds its plan's monthly transfer to the pool of its region.");
  }
  return [
    h("p", { class: "hint" }, `Your VMs in a region share one pool, made of the monthly transfer of each VM's plan. Traffic above it costs ${usage.overage_price_per_gib} ${usage.currency} per GiB.`),
    h("div", { class: "bandwidth" }, usage.regions.map((region) => regionUsage(region, regionNames.get(region.region) || region.region))),
  ];
}

function regionUsage(region, name) {
  const percent = region.percent === null ? "" : ` (${region.percent}%)`;
  const over = region.overage_gib > 0 ? h("p", { class: "field-error" }, `${region.overage_gib} GiB above the pool.`) : null;
  return h(
    "div",
    { class: "bandwidth-region" },
    h("h3", {}, name),
    meter(region.used_bytes, region.pool_bytes, `Bandwidth used in ${name}`),
    h("p", { class: "meter-text" }, `${region.used_gib} GiB of ${region.pool_gib} GiB used${percent}`),
    over,
  );
}
