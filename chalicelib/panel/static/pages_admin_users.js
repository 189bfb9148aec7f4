// Admin pages for accounts, VMs, payments and the audit log, built on /v1/admin/ only. The API
// audits every admin read and change, so these pages only show what it returns and send requests.

import { h, replace } from "./dom.js";
import { ApiError, del, get, id, path, post, put } from "./api.js";
import {
  actionWithResult,
  alertBox,
  badge,
  confirmDialog,
  dateTime,
  factList,
  filterForm,
  form,
  money,
  notify,
  pageHeader,
  pagedList,
  reloadingPage,
  section,
  table,
} from "./ui.js";

// Items per API page; the admin API accepts 1 to 200.
const PAGE_SIZE = 50;
const VM_STATES = ["provisioning", "active", "deleting", "deleted", "error"];
const MAX_VM_LIMIT = 1000;
const STATUS_KINDS = {
  active: "ok",
  completed: "ok",
  disabled: "warn",
  held: "warn",
  refunded: "warn",
  reversed: "warn",
  unknown: "warn",
  deleted: "bad",
  error: "bad",
  failed: "bad",
};

// ---- small pieces shared by the pages of this module --------------------------------------

// "#/admin/vms?state=active", leaving out empty values.
function hashLink(base, query = {}) {
  return `#${path(base, query)}`;
}

function statusBadge(status) {
  return badge(status || "unknown", STATUS_KINDS[status] || "");
}

function accountLink(accountId) {
  if (!accountId) return "";
  return h("a", { href: `#/admin/users/${id(accountId)}`, class: "code" }, accountId);
}

// Turn "currency_mismatch" into "Currency mismatch".
function readable(code) {
  const text = String(code).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// A list that pages with the API's cursor. A filtered scan may return an empty page that still
// has a cursor, so an empty page with a cursor invites the admin to load more.
function cursorTable(fetchPage, key, columns, { empty, decorate = null }) {
  let hasMore = false;
  const load = async (cursor) => {
    const page = await fetchPage(cursor);
    hasMore = Boolean(page.cursor);
    return { items: page[key] || [], cursor: page.cursor };
  };
  const render = (items) => {
    if (!items.length) {
      return h("p", { class: "empty" }, hasMore ? "No matches in this part of the table. Load more to search further." : empty);
    }
    const node = table(columns, items);
    if (decorate) decorate(node, items);
    return node;
  };
  return pagedList(load, render);
}

// ---- users ----------------------------------------------------------------------------------

const USER_COLUMNS = [
  { label: "E-mail", value: (user) => h("a", { href: `#/admin/users/${id(user.id)}` }, user.email) },
  { label: "Balance", value: (user) => money(user.balance) },
  { label: "Status", value: (user) => statusBadge(user.status) },
  { label: "Role", value: (user) => user.role },
  { label: "Verified", value: (user) => (user.email_verified ? "Yes" : "No") },
  { label: "Created", value: (user) => dateTime(user.created_at) },
];

export function userList({ query, navigate }) {
  const email = (query.email || "").trim();
  const search = filterForm(
    [{ name: "email", label: "E-mail starts with", value: email, autocomplete: "off", inputmode: "email" }],
    "/admin/users",
    navigate,
    "Search",
  );
  const byId = form({
    fields: [{ name: "account_id", label: "Account id", autocomplete: "off" }],
    submitLabel: "Open account",
    className: "filters",
    onSubmit: (values) => {
      const accountId = values.account_id.trim();
      if (!accountId) throw new ApiError(0, "missing", "Enter an account id.", "account_id");
      navigate(`#/admin/users/${id(accountId)}`);
    },
  });

  const results = cursorTable((cursor) => get(path("v1/admin/users", { email, limit: PAGE_SIZE, cursor })), "users", USER_COLUMNS, {
    empty: email ? `No account has an e-mail address starting with “${email}”.` : "No accounts yet.",
  });

  return h(
    "div",
    {},
    pageHeader("Users"),
    h("div", { class: "filter-row" }, search, byId),
    section(email ? `Accounts starting with “${email}”` : "Accounts", results),
  );
}

export function userDetail({ params, navigate, refreshSession }) {
  const load = () => get(`v1/admin/users/${id(params.accountId)}`);
  return reloadingPage(load, (account, reload) => drawUser(account, { reload, navigate, refreshSession }));
}

function drawUser(account, context) {
  const balance = h("span", { class: "admin-balance" }, money(account.balance));
  const vmLimit = h("span", {}, String(account.vm_limit));
  const links = h(
    "p",
    { class: "button-row" },
    h("a", { href: hashLink("/admin/vms", { account_id: account.id }) }, "VMs"),
    h("a", { href: hashLink("/admin/payments", { account_id: account.id }) }, "Payments"),
    h("a", { href: hashLink("/admin/audit", { target: `account:${account.id}` }) }, "Audit log"),
  );
  const facts = factList([
    ["Account id", h("span", { class: "code" }, account.id)],
    ["Balance", balance],
    ["Hourly cost", money(account.hourly_cost)],
    ["Status", statusBadge(account.status)],
    ["Role", account.role],
    ["E-mail verified", account.email_verified ? "Yes" : "No"],
    ["VM limit", vmLimit],
    ["Live VMs", String(account.vms.length)],
    ["Created", dateTime(account.created_at)],
    ["Billed through", billedThrough(account.billed_through)],
    ["Low-credit notices", String(account.low_credit_notices)],
  ]);

  return h(
    "div",
    {},
    pageHeader(account.email, statusBadge(account.status)),
    h("div", { class: "grid admin-grid" }, section("Account", facts, links), section("Adjust credit", creditForm(account, balance))),
    section("VMs", table(VM_COLUMNS, account.vms, { empty: "This account has no live VMs." })),
    h("div", { class: "grid admin-grid" }, section("VM limit", vmLimitForm(account, vmLimit)), accessSection(account, context)),
    deleteSection(account, context),
  );
}

// billed_through is the last billed hour, "2026-12-04T22": every VM-hour ending at or before
// that hour's end is charged, so show that end.
const HOUR_MILLISECONDS = 3600 * 1000;

function billedThrough(hour) {
  if (!hour) return "Not billed yet";
  const start = Date.parse(`${hour}:00:00Z`);
  if (Number.isNaN(start)) return hour;
  return dateTime(new Date(start + HOUR_MILLISECONDS).toISOString());
}

function creditForm(account, balanceNode) {
  const result = h("div", { class: "action-result", "aria-live": "polite" });
  const node = form({
    fields: [
      { name: "amount", label: "Amount", inputmode: "decimal", autocomplete: "off", placeholder: "12.50", hint: "A signed decimal: 10.00 credits the account, -5.00 debits it." },
      { name: "reason", label: "Reason", type: "textarea", rows: 2, maxLength: 500, hint: "The customer sees this on their ledger." },
    ],
    submitLabel: "Apply adjustment",
    busyLabel: "Applying…",
    onSubmit: async (values, formNode) => {
      replace(result);
      const answer = await post(`v1/admin/users/${id(account.id)}/credit`, { amount: values.amount.trim(), reason: values.reason });
      replace(balanceNode, money(answer.balance));
      const done = answer.applied ? `Adjusted by ${money(answer.amount)}.` : "This adjustment was already applied.";
      replace(result, alertBox(`${done} New balance: ${money(answer.balance)}.`, "success"));
      formNode.reset();
    },
  });
  return [node, result];
}

function vmLimitForm(account, vmLimitNode) {
  return form({
    fields: [{ name: "vm_limit", label: "VM limit", type: "number", min: 0, max: MAX_VM_LIMIT, step: 1, value: account.vm_limit, hint: `Live VMs the account may have, 0 to ${MAX_VM_LIMIT}.` }],
    submitLabel: "Set VM limit",
    onSubmit: async (values) => {
      const answer = await put(`v1/admin/users/${id(account.id)}/vm-limit`, { vm_limit: values.vm_limit });
      replace(vmLimitNode, String(answer.vm_limit));
      return `VM limit set to ${answer.vm_limit}.`;
    },
  });
}

function accessSection(account, { reload, navigate, refreshSession }) {
  const parts = [];
  if (account.status === "active") {
    const disable = actionWithResult("Disable account", async () => {
      await post(`v1/admin/users/${id(account.id)}/disable`);
      await reload();
    }, {
      busyLabel: "Disabling…",
      kind: "danger",
      success: `${account.email} is disabled.`,
      confirmText: `Disable ${account.email}? Their sessions end and their API keys stop working. Their VMs keep running and being billed.`,
    });
    parts.push(h("p", {}, "Disabling ends the account's sessions and blocks its API keys."), disable.button, disable.result);
  } else if (account.status === "disabled") {
    const enable = actionWithResult("Enable account", async () => {
      await post(`v1/admin/users/${id(account.id)}/enable`);
      await reload();
    }, { busyLabel: "Enabling…", success: `${account.email} is enabled again.` });
    parts.push(h("p", {}, "The account is disabled: it cannot log in or use its API keys."), enable.button, enable.result);
  } else {
    parts.push(h("p", {}, `The account is ${account.status}.`));
  }

  if (account.role !== "admin" && account.status === "active") {
    const impersonate = actionWithResult("Impersonate", async () => {
      await post(`v1/admin/users/${id(account.id)}/impersonate`);
      await refreshSession();
      navigate("#/");
    }, {
      busyLabel: "Switching…",
      confirmText: `Open the panel as ${account.email}? You act as the customer until you end the impersonation, and the audit log records it.`,
    });
    parts.push(h("p", {}, "See the panel as this customer sees it."), impersonate.button, impersonate.result);
  }
  return section("Access", parts);
}

function deleteSection(account, { navigate }) {
  if (account.status === "deleted") return null;
  const remove = actionWithResult("Delete account", async () => {
    await del(`v1/admin/users/${id(account.id)}`);
    navigate("#/admin/users");
  }, {
    busyLabel: "Deleting…",
    kind: "danger",
    success: `The account ${account.email} is deleted.`,
    confirmText: `Delete the account ${account.email}? Its sign-in, sessions and API keys are removed and cannot be restored. Its ledger and audit history stay.`,
  });
  return section(
    "Delete account",
    h("p", {}, "Only an account without VMs, images or money can be deleted. Settle its balance to 0.00 with a credit adjustment first."),
    remove.button,
    remove.result,
  );
}

// ---- VMs ------------------------------------------------------------------------------------

function suspendedText(vm) {
  if (vm.suspended === "manual") return badge("Suspended by an admin", "bad");
  if (vm.suspended === "auto") return badge("Suspended for unpaid usage", "warn");
  return "No";
}

const VM_COLUMNS = [
  { label: "Name", value: (vm) => h("a", { href: `#/admin/vms/${id(vm.id)}` }, vm.name || vm.id) },
  { label: "Account", value: (vm) => accountLink(vm.account_id) },
  { label: "Region", value: (vm) => vm.region },
  { label: "Plan", value: (vm) => vm.plan },
  { label: "State", value: (vm) => statusBadge(vm.state) },
  { label: "Suspended", value: suspendedText },
  { label: "Created", value: (vm) => dateTime(vm.created_at) },
];

export function vmList({ query, navigate }) {
  const stateOptions = [{ value: "", label: "Any state" }, ...VM_STATES.map((state) => ({ value: state, label: state }))];
  const filters = filterForm(
    [
      { name: "account_id", label: "Account id", value: query.account_id || "", required: false, autocomplete: "off" },
      { name: "state", label: "State", type: "select", options: stateOptions, value: query.state || "", required: false },
    ],
    "/admin/vms",
    navigate,
  );
  const fetchPage = (cursor) => get(path("v1/admin/vms", { account_id: query.account_id, state: query.state, limit: PAGE_SIZE, cursor }));
  return h(
    "div",
    {},
    pageHeader("All VMs"),
    filters,
    section("VMs", cursorTable(fetchPage, "vms", VM_COLUMNS, { empty: "No VM matches these filters." })),
  );
}

export function vmDetail({ params }) {
  return reloadingPage(() => get(`v1/admin/vms/${id(params.vmId)}`), drawVm);
}

function drawVm(vm, reload) {
  const facts = factList([
    ["VM id", h("span", { class: "code" }, vm.id)],
    ["Account", accountLink(vm.account_id)],
    ["Region", vm.region],
    ["Plan", vm.plan],
    ["Image", vm.image],
    ["State", statusBadge(vm.state)],
    ["Power", vm.power || ""],
    ["Suspended", suspendedText(vm)],
    ["Backend id", vm.backend_id ? h("span", { class: "code" }, vm.backend_id) : "None yet"],
    ["Created", dateTime(vm.created_at)],
    ["Billing started", vm.billing_started_at ? dateTime(vm.billing_started_at) : "Not yet"],
    ["Deleted", vm.deleted_at ? dateTime(vm.deleted_at) : "No"],
    ["Backend error", vm.error || "None"],
  ]);
  const audit = h("p", {}, h("a", { href: hashLink("/admin/audit", { target: `vm:${vm.id}` }) }, "Audit log of this VM"));
  return h("div", {}, pageHeader(vm.name || vm.id, statusBadge(vm.state)), section("VM", facts, audit), suspensionSection(vm, reload));
}

function suspensionSection(vm, reload) {
  if (vm.suspended === "manual") {
    const lift = actionWithResult("Unsuspend", async () => {
      await post(`v1/admin/vms/${id(vm.id)}/unsuspend`);
      await reload();
    }, { busyLabel: "Unsuspending…", success: `${vm.name} is no longer suspended. The customer can start it again.` });
    return section("Suspension", h("p", {}, "An admin suspended this VM. Unsuspending lets the customer start it again."), lift.button, lift.result);
  }
  if (vm.suspended === "auto") {
    return section("Suspension", h("p", {}, "This VM is suspended for unpaid usage. It is lifted when the account's balance is positive again."));
  }
  if (vm.state !== "active") {
    return section("Suspension", h("p", {}, `Only an active VM can be suspended; this one is ${vm.state}.`));
  }
  const suspend = form({
    fields: [{ name: "reason", label: "Reason", type: "textarea", rows: 2, required: false, maxLength: 500, hint: "Kept with the change in the audit log." }],
    submitLabel: "Suspend",
    busyLabel: "Suspending…",
    onSubmit: async (values) => {
      const confirmed = await confirmDialog(`Suspend ${vm.name}? It is stopped on its backend and keeps being billed until an admin unsuspends it.`, "Suspend");
      if (!confirmed) return null;
      const answer = await post(`v1/admin/vms/${id(vm.id)}/suspend`, values.reason ? { reason: values.reason } : {});
      await reload();
      if (answer.stop_error) notify(`The VM is suspended, but stopping it on its backend failed: ${answer.stop_error}`, "error");
      return `${vm.name} is suspended.`;
    },
  });
  return section("Suspension", h("p", {}, "Suspending stops the VM and keeps the customer from starting it. Billing goes on."), suspend);
}

// ---- payments -------------------------------------------------------------------------------

function flagList(payment) {
  if (!payment.flags || !payment.flags.length) return "None";
  return h("span", { class: "flag-badges" }, payment.flags.map((flag) => badge(readable(flag), "bad")));
}

const PAYMENT_COLUMNS = [
  { label: "Created", value: (payment) => dateTime(payment.created_at) },
  { label: "Account", value: (payment) => accountLink(payment.account_id) },
  { label: "Gateway", value: (payment) => payment.gateway },
  { label: "Gateway payment id", value: (payment) => h("span", { class: "code" }, payment.gateway_payment_id || payment.key) },
  { label: "Status", value: (payment) => statusBadge(payment.status) },
  { label: "Requested", value: (payment) => h("span", { class: "amount" }, money(payment.requested, payment.currency)) },
  { label: "Received", value: (payment) => h("span", { class: "amount" }, money(payment.received, payment.currency)) },
  { label: "Flags", value: flagList },
];

// Mark the rows of flagged payments, so they stand out in a long list.
function markFlaggedRows(node, payments) {
  const rows = node.querySelectorAll("tbody tr");
  payments.forEach((payment, index) => {
    if (payment.flags && payment.flags.length) rows[index].classList.add("row-flagged");
  });
}

export function paymentList({ query, navigate }) {
  const filters = filterForm(
    [
      { name: "flagged", label: "Only payments flagged for review", type: "checkbox", value: query.flagged === "true", required: false },
      { name: "account_id", label: "Account id", value: query.account_id || "", required: false, autocomplete: "off" },
    ],
    "/admin/payments",
    navigate,
  );
  const fetchPage = (cursor) =>
    get(path("v1/admin/payments", { flagged: query.flagged === "true" ? "true" : null, account_id: query.account_id, limit: PAGE_SIZE, cursor }));
  return h(
    "div",
    {},
    pageHeader("Payments"),
    h(
      "p",
      { class: "hint" },
      "Flags mark payments to review: another currency, an amount outside the bounds, under- or overpaid, an unknown or mismatched account, or a refund or reversal that arrived before its credit.",
    ),
    filters,
    section(
      query.flagged === "true" ? "Flagged payments" : "Payments",
      cursorTable(fetchPage, "payments", PAYMENT_COLUMNS, { empty: "No payment matches these filters.", decorate: markFlaggedRows }),
    ),
  );
}

// ---- audit log ------------------------------------------------------------------------------

function today() {
  return new Date().toISOString().slice(0, 10);
}

// Link a target such as "account:<id>" or "vm:<id>" to its admin page when there is one.
const TARGET_PAGES = { account: "users", vm: "vms", ticket: "tickets" };

function targetLink(target) {
  const [kind, ...rest] = String(target || "").split(":");
  const value = rest.join(":");
  const page = TARGET_PAGES[kind];
  if (!page || !value || value === "*") return h("span", { class: "code" }, target || "");
  return h("a", { href: `#/admin/${page}/${id(value)}`, class: "code" }, target);
}

function actorLink(actor) {
  if (!actor || actor === "system") return "system";
  return accountLink(actor);
}

function detailsText(details) {
  if (!details || typeof details !== "object") return "";
  const parts = Object.entries(details)
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
  return h("span", { class: "details-text" }, parts.join("; "));
}

const AUDIT_COLUMNS = [
  { label: "Time", value: (event) => dateTime(event.time) },
  { label: "Action", value: (event) => h("span", { class: "code" }, event.action) },
  { label: "Actor", value: (event) => actorLink(event.actor) },
  { label: "Target", value: (event) => targetLink(event.target) },
  { label: "Address", value: (event) => event.ip || "" },
  { label: "Details", value: (event) => detailsText(event.details) },
];

export function auditLog({ query, navigate }) {
  const target = (query.target || "").trim();
  const day = query.day || today();
  const filters = filterForm(
    [
      { name: "day", label: "Day (UTC)", type: "date", value: target ? query.day || "" : day, required: false },
      {
        name: "target",
        label: "Target",
        value: target,
        required: false,
        autocomplete: "off",
        placeholder: "account:…",
        hint: "Such as account:<id>, vm:<id> or plan:<id>. A target lists its events of every day, so the day is ignored.",
      },
    ],
    "/admin/audit",
    navigate,
  );
  const fetchPage = (cursor) => get(path("v1/admin/audit", target ? { target, limit: PAGE_SIZE, cursor } : { day, limit: PAGE_SIZE, cursor }));
  const title = target ? `Events about ${target}` : `Events on ${day}`;
  return h(
    "div",
    {},
    pageHeader("Audit log"),
    filters,
    section(title, h("div", { class: "audit-log" }, cursorTable(fetchPage, "events", AUDIT_COLUMNS, { empty: "No events." }))),
  );
}
