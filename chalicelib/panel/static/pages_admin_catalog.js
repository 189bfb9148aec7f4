// Admin pages for what customers choose from and read: plans, regions, catalog images,
// announcements and support tickets, built on /v1/admin/ only. Turning a plan, region or image
// off hides it from new VMs, while existing VMs keep running and being billed.

import { h, replace } from "./dom.js";
import { ApiError, del, get, id, patch, post, put } from "./api.js";
import {
  actionWithResult,
  alertBox,
  badge,
  dateTime,
  factList,
  filterForm,
  form,
  money,
  pageHeader,
  pagedTable,
  reloadingPage,
  section,
  table,
} from "./ui.js";

const PLAN_SPEC_FIELDS = [
  { name: "name", label: "Name", maxLength: 100, hint: "Shown to customers." },
  { name: "vcpus", label: "Virtual CPUs", type: "number", min: 1, step: 1 },
  { name: "ram_mb", label: "Memory (MiB)", type: "number", min: 1, step: 1 },
  { name: "disk_gb", label: "Disk (GB)", type: "number", min: 1, step: 1 },
  { name: "bandwidth_gib", label: "Monthly bandwidth (GiB)", type: "number", min: 0, step: 1 },
];
// Backend types the API accepts (BACKEND_CLASSES in chalicelib/backends/registry.py).
// NOTE: no API route lists them, so this copy must follow the registry by hand.
const BACKEND_TYPES = ["demo", "digitalocean", "linode", "vultr", "lunanode", "openstack", "cloudstack", "solusvm", "libcloud"];
const ANNOUNCEMENT_LEVELS = ["info", "maintenance", "incident"];
const TICKET_STATUSES = ["open", "answered", "closed"];
const LEVEL_KINDS = { info: "", maintenance: "warn", incident: "bad" };
const TICKET_KINDS = { open: "warn", answered: "ok", closed: "" };

function enabledBadge(item) {
  return item.enabled ? badge("Enabled", "ok") : badge("Disabled");
}

// Turn a datetime-local value ("2026-12-04T10:00"), read as UTC, into ISO 8601 with a zone.
function utcTime(value) {
  if (!value) return undefined;
  return value.length === 16 ? `${value}:00Z` : `${value}Z`;
}

// Drop the fields left empty, because the API rejects null for an optional text field.
function withoutEmpty(body) {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null && value !== undefined && value !== ""));
}

// A button that enables or disables a catalog item, then redraws the page. `label` names the
// item in a sentence, such as "the plan s1".
function enableToggle(kind, item, reload, label) {
  const action = item.enabled ? "disable" : "enable";
  const confirmText = item.enabled ? `Disable ${label}? New VMs cannot use it; existing VMs keep running and being billed.` : null;
  const named = label.charAt(0).toUpperCase() + label.slice(1);
  const toggle = actionWithResult(item.enabled ? "Disable" : "Enable", async () => {
    await post(`v1/admin/${kind}/${id(item.id)}/${action}`);
    await reload();
  }, {
    busyLabel: item.enabled ? "Disabling…" : "Enabling…",
    confirmText,
    success: `${named} is ${item.enabled ? "disabled" : "enabled"}.`,
  });
  return h("div", { class: "cell-actions" }, toggle.button, toggle.result);
}

// ---- plans ----------------------------------------------------------------------------------

function specsText(plan) {
  return `${plan.vcpus} vCPU · ${plan.ram_mb} MiB · ${plan.disk_gb} GB disk · ${plan.bandwidth_gib} GiB/month`;
}

function regionsText(plan) {
  const entries = Object.entries(plan.region_ids || {});
  if (!entries.length) return "Not offered";
  return entries.map(([region, backendId]) => `${region} (${backendId})`).join(", ");
}

export function planList({ query, navigate }) {
  const load = () => Promise.all([get("v1/admin/plans"), get("v1/admin/regions")]);
  return reloadingPage(load, ([plans, regions], reload) => drawPlans(plans.plans, regions.regions, { query, navigate, reload }));
}

function drawPlans(plans, regions, { query, navigate, reload }) {
  const columns = [
    { label: "Plan", value: (plan) => h("a", { href: `#/admin/plans?plan=${id(plan.id)}` }, h("span", { class: "code" }, plan.id), " ", plan.name) },
    { label: "Specs", value: specsText },
    { label: "Price per hour", value: (plan) => (plan.price_hourly ? money(plan.price_hourly) : badge("No price", "warn")) },
    { label: "Regions", value: regionsText },
    { label: "Status", value: enabledBadge },
  ];
  const chosen = query.plan ? plans.find((plan) => plan.id === query.plan) : null;
  const editor = query.plan
    ? chosen
      ? planEditor(chosen, regions, reload)
      : alertBox(`There is no plan ${query.plan}.`)
    : null;

  return h(
    "div",
    {},
    pageHeader("Plans"),
    editor,
    section("Plans", h("p", { class: "hint" }, "Open a plan to edit it, change its price or offer it in a region."), pagedTable(columns, plans, { empty: "No plans yet." })),
    section("Create a plan", createPlanForm(navigate)),
  );
}

function createPlanForm(navigate) {
  return form({
    fields: [
      { name: "id", label: "Plan id", autocomplete: "off", placeholder: "s2", hint: "Customers send it when they create a VM: lower-case letters, digits and hyphens." },
      ...PLAN_SPEC_FIELDS,
      { name: "price_hourly", label: "Price per hour", inputmode: "decimal", autocomplete: "off", placeholder: "0.0075" },
      { name: "enabled", label: "Offer it at once", type: "checkbox", required: false },
    ],
    submitLabel: "Create plan",
    busyLabel: "Creating…",
    className: "wide columns",
    onSubmit: async (values) => {
      const plan = await post("v1/admin/plans", { ...values, id: values.id.trim(), price_hourly: values.price_hourly.trim() });
      navigate(`#/admin/plans?plan=${id(plan.id)}`);
      return `Plan ${plan.id} is created. Offer it in a region so customers can choose it.`;
    },
  });
}

function planEditor(plan, regions, reload) {
  return section(
    `Plan ${plan.id}: ${plan.name}`,
    h("div", { class: "page-actions" }, enableToggle("plans", plan, reload, `the plan ${plan.id}`), h("a", { href: "#/admin/plans", class: "button" }, "Close")),
    h(
      "div",
      { class: "grid admin-grid" },
      h("div", {}, h("h3", {}, "Name and specs"), editPlanForm(plan, reload)),
      h("div", {}, h("h3", {}, "Prices"), priceTable(plan), addPriceForm(plan, reload)),
    ),
    h("h3", {}, "Regions"),
    planRegionTable(plan, reload),
    offerForm(plan, regions, reload),
  );
}

function editPlanForm(plan, reload) {
  const fields = PLAN_SPEC_FIELDS.map((field) => ({ ...field, value: plan[field.name] }));
  return form({
    fields,
    submitLabel: "Save specs",
    onSubmit: async (values) => {
      const changes = Object.fromEntries(Object.entries(values).filter(([name, value]) => value !== plan[name]));
      await patch(`v1/admin/plans/${id(plan.id)}`, changes);
      await reload();
      return `Plan ${plan.id} is saved.`;
    },
  });
}

function priceTable(plan) {
  const now = Date.now();
  const prices = [...plan.prices].sort((a, b) => b.effective_from.localeCompare(a.effective_from));
  const columns = [
    { label: "Effective from", value: (price) => dateTime(price.effective_from) },
    { label: "Price per hour", value: (price) => money(price.price_hourly) },
    { label: "", value: (price) => (Date.parse(price.effective_from) > now ? badge("Upcoming", "warn") : "") },
  ];
  return table(columns, prices, { empty: "No price yet: customers cannot be billed for this plan." });
}

function addPriceForm(plan, reload) {
  return form({
    fields: [
      { name: "price_hourly", label: "New price per hour", inputmode: "decimal", autocomplete: "off", placeholder: "0.0075" },
      {
        name: "effective_from",
        label: "Effective from (UTC)",
        type: "datetime-local",
        required: false,
        hint: "Empty means now. Hours that began earlier keep their price.",
      },
    ],
    submitLabel: "Add price",
    busyLabel: "Adding…",
    onSubmit: async (values) => {
      const body = withoutEmpty({ price_hourly: values.price_hourly.trim(), effective_from: utcTime(values.effective_from) });
      await post(`v1/admin/plans/${id(plan.id)}/prices`, body);
      await reload();
      return `The new price of ${plan.id} is stored.`;
    },
  });
}

function planRegionTable(plan, reload) {
  const entries = Object.entries(plan.region_ids || {}).map(([region, backendId]) => ({ region, backendId }));
  const columns = [
    { label: "Region", value: (entry) => entry.region },
    { label: "Provider plan id", value: (entry) => h("span", { class: "code" }, entry.backendId) },
    {
      label: "Actions",
      value: (entry) => {
        const withdraw = actionWithResult("Withdraw", async () => {
          await del(`v1/admin/plans/${id(plan.id)}/regions/${id(entry.region)}`);
          await reload();
        }, {
          busyLabel: "Withdrawing…",
          kind: "danger",
          success: `Plan ${plan.id} is withdrawn from ${entry.region}.`,
          confirmText: `Withdraw plan ${plan.id} from ${entry.region}? New VMs there cannot use it; existing VMs keep running at their price.`,
        });
        return h("div", { class: "cell-actions" }, withdraw.button, withdraw.result);
      },
    },
  ];
  return table(columns, entries, { empty: "Not offered in any region yet." });
}

function offerForm(plan, regions, reload) {
  if (!regions.length) return h("p", { class: "empty" }, "Add a region first.");
  return form({
    fields: [
      { name: "region_id", label: "Region", type: "select", options: regions.map((region) => ({ value: region.id, label: `${region.name} (${region.id})` })) },
      { name: "backend_id", label: "Provider plan id", autocomplete: "off", hint: "The provider's id of this size in that region; setting it again replaces it." },
    ],
    submitLabel: "Offer in region",
    busyLabel: "Saving…",
    onSubmit: async (values) => {
      await put(`v1/admin/plans/${id(plan.id)}/regions/${id(values.region_id)}`, { backend_id: values.backend_id.trim() });
      await reload();
      return `Plan ${plan.id} is offered in ${values.region_id}.`;
    },
  });
}

// ---- regions --------------------------------------------------------------------------------

export function regionList() {
  return reloadingPage(() => get("v1/admin/regions"), (answer, reload) => drawRegions(answer.regions, reload));
}

function importSummary(answer) {
  if (answer.repeated) return "This import already ran.";
  return `Imported ${answer.plans_added} new plans, linked ${answer.plans_linked} existing plans and added ${answer.images_added} images. They are stored disabled: price and enable the ones to offer.`;
}

function regionActions(region, reload) {
  const imported = actionWithResult("Import plans and images", async (result) => {
    const answer = await post(`v1/admin/regions/${id(region.id)}/import`);
    replace(result, alertBox(importSummary(answer), "success"));
  }, { busyLabel: "Importing…" });
  return h("div", { class: "cell-actions" }, enableToggle("regions", region, reload, `the region ${region.id}`), imported.button, imported.result);
}

function drawRegions(regions, reload) {
  const columns = [
    { label: "Region", value: (region) => [h("span", { class: "code" }, region.id), " ", region.name] },
    { label: "Backend", value: (region) => region.backend },
    { label: "Settings", value: (region) => h("code", { class: "code" }, JSON.stringify(region.settings || {})) },
    { label: "Secret reference", value: (region) => (region.secret_ref ? h("code", { class: "code" }, region.secret_ref) : "None") },
    { label: "Status", value: enabledBadge },
    { label: "Actions", value: (region) => regionActions(region, reload) },
  ];
  return h(
    "div",
    {},
    pageHeader("Regions"),
    section("Regions", h("p", { class: "hint" }, "Enabling a region first builds its backend from the settings and the secret, so a region with a missing secret is never offered."), table(columns, regions, { empty: "No regions yet." })),
    section("Add a region", addRegionForm(reload)),
  );
}

function parseSettings(text) {
  if (!text || !text.trim()) return undefined;
  let settings;
  try {
    settings = JSON.parse(text);
  } catch (error) {
    throw new ApiError(0, "invalid_json", `Settings are not valid JSON: ${error.message}`, "settings");
  }
  if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
    throw new ApiError(0, "invalid_json", "Settings must be a JSON object, such as {\"region\": \"fra1\"}.", "settings");
  }
  return settings;
}

function addRegionForm(reload) {
  const backendList = h("datalist", { id: "backend-types" }, BACKEND_TYPES.map((type) => h("option", { value: type })));
  const node = form({
    fields: [
      { name: "id", label: "Region id", autocomplete: "off", placeholder: "fra1" },
      { name: "name", label: "Name", maxLength: 100, placeholder: "Frankfurt" },
      { name: "backend", label: "Backend type", autocomplete: "off", hint: `One of ${BACKEND_TYPES.join(", ")}.` },
      { name: "settings", label: "Settings (JSON)", type: "textarea", rows: 4, required: false, placeholder: "{\"region\": \"fra1\"}", hint: "The backend's settings, such as its API address. Never a secret." },
      { name: "secret_ref", label: "Secret reference", required: false, autocomplete: "off", placeholder: "ssm:/lobster/prod/do-fra1", hint: "A file:, ssm: or secretsmanager: reference to the backend's credentials." },
    ],
    submitLabel: "Add region",
    busyLabel: "Adding…",
    extra: backendList,
    onSubmit: async (values) => {
      const body = withoutEmpty({ ...values, id: values.id.trim(), backend: values.backend.trim(), settings: parseSettings(values.settings) });
      const region = await post("v1/admin/regions", body);
      await reload();
      return `Region ${region.id} is added, disabled. Enable it to offer it.`;
    },
  });
  node.querySelector('[data-field="backend"]').setAttribute("list", "backend-types");
  return node;
}

// ---- catalog images -------------------------------------------------------------------------

export function imageList() {
  const load = () => Promise.all([get("v1/admin/images"), get("v1/admin/regions")]);
  return reloadingPage(load, ([images, regions], reload) => drawImages(images.images, regions.regions, reload));
}

function drawImages(images, regions, reload) {
  const columns = [
    { label: "Image", value: (image) => [h("span", { class: "code" }, image.id), " ", image.name] },
    { label: "Region", value: (image) => image.region },
    { label: "Provider image id", value: (image) => h("span", { class: "code" }, image.backend_id) },
    { label: "Status", value: enabledBadge },
    { label: "Actions", value: (image) => enableToggle("images", image, reload, `the image ${image.id}`) },
  ];
  return h(
    "div",
    {},
    pageHeader("Catalog images"),
    section("Images", pagedTable(columns, images, { empty: "No catalog images yet." })),
    section("Add an image", addImageForm(regions, reload)),
  );
}

function addImageForm(regions, reload) {
  if (!regions.length) return h("p", { class: "empty" }, "Add a region first.");
  return form({
    fields: [
      { name: "id", label: "Image id", autocomplete: "off", placeholder: "debian-12", hint: "Lower-case letters, digits, dots and hyphens." },
      { name: "name", label: "Name", maxLength: 100, placeholder: "Debian 12" },
      { name: "region", label: "Region", type: "select", options: regions.map((region) => ({ value: region.id, label: `${region.name} (${region.id})` })) },
      { name: "backend_id", label: "Provider image id", autocomplete: "off" },
      { name: "enabled", label: "Offer it at once", type: "checkbox", required: false },
    ],
    submitLabel: "Add image",
    busyLabel: "Adding…",
    onSubmit: async (values) => {
      const image = await post("v1/admin/images", { ...values, id: values.id.trim(), backend_id: values.backend_id.trim() });
      await reload();
      return `Image ${image.id} is added.`;
    },
  });
}

// ---- announcements --------------------------------------------------------------------------

export function announcementList() {
  return reloadingPage(() => get("v1/admin/announcements"), (answer, reload) => drawAnnouncements(answer.announcements, reload));
}

function drawAnnouncements(announcements, reload) {
  const newest = [...announcements].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  const items = newest.length
    ? h("div", { class: "admin-announcements" }, newest.map((item) => announcementCard(item, reload)))
    : h("p", { class: "empty" }, "No announcements yet.");
  return h("div", {}, pageHeader("Announcements"), section("Post an announcement", announcementForm(reload)), section("Announcements", items));
}

function announcementCard(item, reload) {
  const when = [`From ${dateTime(item.starts_at)}`, item.ends_at ? ` until ${dateTime(item.ends_at)}` : ""].join("");
  let action = badge(`Withdrawn ${dateTime(item.withdrawn_at)}`);
  if (!item.withdrawn_at) {
    const withdraw = actionWithResult("Withdraw", async () => {
      await del(`v1/admin/announcements/${id(item.id)}`);
      await reload();
    }, {
      busyLabel: "Withdrawing…",
      kind: "danger",
      success: "The announcement is withdrawn.",
      confirmText: `Withdraw the announcement “${item.title}”? Customers stop seeing it at once.`,
    });
    action = h("div", { class: "cell-actions" }, withdraw.button, withdraw.result);
  }
  return h(
    "article",
    { class: `admin-announcement${item.withdrawn_at ? " withdrawn" : ""}` },
    h("h3", {}, item.title, " ", badge(item.level, LEVEL_KINDS[item.level] || "")),
    h("p", { class: "message-meta" }, when, ` · posted ${dateTime(item.created_at)}`),
    h("p", { class: "admin-announcement-body" }, item.body),
    action,
  );
}

function announcementForm(reload) {
  return form({
    fields: [
      { name: "title", label: "Title", maxLength: 200 },
      { name: "body", label: "Text", type: "textarea", rows: 4, maxLength: 4000 },
      { name: "level", label: "Level", type: "select", value: "info", options: ANNOUNCEMENT_LEVELS.map((level) => ({ value: level, label: level })) },
      { name: "starts_at", label: "Shown from (UTC)", type: "datetime-local", required: false, hint: "Empty means now." },
      { name: "ends_at", label: "Shown until (UTC)", type: "datetime-local", required: false, hint: "Empty means until withdrawn." },
    ],
    submitLabel: "Post announcement",
    busyLabel: "Posting…",
    onSubmit: async (values, node) => {
      const body = withoutEmpty({ ...values, starts_at: utcTime(values.starts_at), ends_at: utcTime(values.ends_at) });
      await post("v1/admin/announcements", body);
      node.reset();
      await reload();
      return "The announcement is posted.";
    },
  });
}

// ---- tickets --------------------------------------------------------------------------------

export function ticketList({ query, navigate }) {
  const status = TICKET_STATUSES.includes(query.status) ? query.status : "open";
  const filters = filterForm(
    [{ name: "status", label: "Status", type: "select", value: status, options: TICKET_STATUSES.map((value) => ({ value, label: value })) }],
    "/admin/tickets",
    navigate,
    "Show",
  );
  const columns = [
    { label: "Subject", value: (ticket) => h("a", { href: `#/admin/tickets/${id(ticket.id)}` }, ticket.subject) },
    { label: "Account", value: (ticket) => h("a", { href: `#/admin/users/${id(ticket.account_id)}`, class: "code" }, ticket.account_id) },
    { label: "Status", value: (ticket) => badge(ticket.status, TICKET_KINDS[ticket.status] || "") },
    { label: "Messages", value: (ticket) => String(ticket.message_count) },
    { label: "Last activity", value: (ticket) => dateTime(ticket.updated_at) },
  ];
  return get(`v1/admin/tickets?status=${status}`).then((answer) =>
    h(
      "div",
      {},
      pageHeader("Tickets"),
      filters,
      section(`Tickets: ${status}`, pagedTable(columns, answer.tickets, { empty: `No ${status} tickets.` })),
    ),
  );
}

export function ticketDetail({ params }) {
  return reloadingPage(() => get(`v1/admin/tickets/${id(params.ticketId)}`), drawTicket);
}

function drawTicket(ticket, reload) {
  const messages = ticket.messages.map((message) =>
    h(
      "article",
      { class: `message${message.author === "staff" ? " message-staff" : ""}` },
      h("p", { class: "message-meta" }, message.author === "staff" ? "Staff" : "Customer", " · ", dateTime(message.created_at)),
      message.message,
    ),
  );
  const facts = factList([
    ["Account", h("a", { href: `#/admin/users/${id(ticket.account_id)}`, class: "code" }, ticket.account_id)],
    ["Status", badge(ticket.status, TICKET_KINDS[ticket.status] || "")],
    ["Opened", dateTime(ticket.created_at)],
    ["Last activity", dateTime(ticket.updated_at)],
    ["Closed", ticket.closed_at ? dateTime(ticket.closed_at) : "No"],
  ]);
  return h(
    "div",
    {},
    pageHeader(ticket.subject, closeButton(ticket, reload)),
    section("Ticket", facts),
    section("Messages", h("div", { class: "messages" }, messages)),
    section("Reply", replyForm(ticket, reload)),
  );
}

function closeButton(ticket, reload) {
  if (ticket.status === "closed") return null;
  const close = actionWithResult("Close ticket", async () => {
    await post(`v1/admin/tickets/${id(ticket.id)}/close`);
    await reload();
  }, { busyLabel: "Closing…", success: "The ticket is closed.", confirmText: `Close the ticket “${ticket.subject}”?` });
  return h("div", { class: "cell-actions" }, close.button, close.result);
}

function replyForm(ticket, reload) {
  return form({
    fields: [
      {
        name: "message",
        label: "Staff reply",
        type: "textarea",
        rows: 5,
        hint: ticket.status === "closed" ? "Replying opens the closed ticket again. The customer gets an e-mail." : "The customer gets an e-mail.",
      },
    ],
    submitLabel: "Send reply",
    busyLabel: "Sending…",
    className: "wide",
    onSubmit: async (values) => {
      await post(`v1/admin/tickets/${id(ticket.id)}/reply`, { message: values.message });
      await reload();
      return "The reply is sent.";
    },
  });
}
