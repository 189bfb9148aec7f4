// The customer's VMs: the list, the create flow and one VM's page. Buttons follow the
// capabilities the VM's JSON lists, and a VM in a transitional state is polled until it settles.

import { h, replace } from "./dom.js";
import { ApiError, get, post, put, patch, del, id } from "./api.js";
import {
  actionButton,
  alertBox,
  badge,
  confirmDialog,
  dateTime,
  factList,
  form,
  loaded,
  money,
  pageHeader,
  pagedTable,
  pollUntilSettled,
  section,
} from "./ui.js";

const VMS_PER_PAGE = 25;
const TRANSITIONAL_STATES = new Set(["provisioning", "deleting"]);
const STATE_KINDS = { active: "ok", provisioning: "warn", deleting: "warn", error: "bad", deleted: "" };
const MIB_PER_GIB = 1024;

// ---- shared pieces ----------------------------------------------------------------------

function vmHref(vm) {
  return `#/vms/${id(vm.id)}`;
}

function stateBadges(vm) {
  const items = [badge(vm.state, STATE_KINDS[vm.state] || "")];
  if (vm.state === "active" && vm.power === "offline") items.push(badge("stopped", "warn"));
  if (vm.suspended && vm.suspended !== "no") items.push(badge("suspended", "bad"));
  return h("span", { class: "badges" }, items);
}

// Lookups from ids to display names, with the id itself when the catalog no longer lists it.
function catalogNames(catalog, ownImages = []) {
  const byId = (items) => new Map(items.map((item) => [item.id, item]));
  const regions = byId(catalog.regions);
  const plans = byId(catalog.plans);
  const images = byId([...catalog.images, ...ownImages]);
  return {
    region: (regionId) => (regions.get(regionId) || { name: regionId }).name,
    plan: (planId) => plans.get(planId) || null,
    image: (imageId) => (images.get(imageId) || { name: imageId }).name,
  };
}

function addressText(vm) {
  const addresses = (vm.addresses || []).filter((address) => !address.private).map((address) => address.ip);
  return addresses.length ? addresses.join(", ") : "—";
}

function memoryText(ramMb) {
  if (ramMb >= MIB_PER_GIB && ramMb % MIB_PER_GIB === 0) return `${ramMb / MIB_PER_GIB} GB RAM`;
  return `${ramMb} MB RAM`;
}

function planFacts(plan) {
  const cpus = `${plan.vcpus} vCPU${plan.vcpus === 1 ? "" : "s"}`;
  return `${memoryText(plan.ram_mb)} · ${cpus} · ${plan.disk_gb} GB disk · ${plan.bandwidth_gib} GiB transfer a month`;
}

function planPriceText(plan, currency) {
  return `${money(plan.price_hourly, currency)} an hour (about ${money(plan.price_monthly_estimate, currency)} a month)`;
}

// The region's plans, cheapest first.
function plansInRegion(catalog, regionId) {
  const plans = catalog.plans.filter((plan) => plan.regions.includes(regionId));
  return plans.sort((a, b) => a.price_hourly.micros - b.price_hourly.micros);
}

// Public images of the region, then the customer's own ready images there.
function imageOptions(catalog, ownImages, regionId) {
  const publicImages = catalog.images.filter((image) => image.region === regionId).map((image) => ({ value: image.id, label: image.name }));
  const own = ownImages
    .filter((image) => image.region === regionId && image.state === "active")
    .map((image) => ({ value: image.id, label: `${image.name} (your image)` }));
  return [...publicImages, ...own];
}

function sshKeyOptions(keys) {
  return [{ value: "", label: "No SSH key" }, ...keys.map((key) => ({ value: key.id, label: `${key.name} (${key.fingerprint})` }))];
}

function selectControl(name, options, selected = "") {
  return h(
    "select",
    { name, dataset: { field: name } },
    options.map((option) => h("option", { value: option.value, selected: option.value === selected }, option.label)),
  );
}

function fillSelect(select, options) {
  replace(select, options.map((option) => h("option", { value: option.value }, option.label)));
}

function sshKeyHint() {
  return ["The key is installed for the VM's default user. ", h("a", { href: "#/ssh-keys" }, "Add an SSH key")];
}

async function loadChoices() {
  const [catalog, images, keys] = await Promise.all([get("v1/catalog"), get("v1/images"), get("v1/ssh-keys")]);
  return { catalog, ownImages: images.images, keys: keys.ssh_keys };
}

// ---- list -------------------------------------------------------------------------------

export async function vmList({ session }) {
  const [list, catalog] = await Promise.all([get("v1/vms"), get("v1/catalog")]);
  const names = catalogNames(catalog);
  const vms = [...list.vms].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const columns = [
    { label: "Name", value: (vm) => h("a", { href: vmHref(vm) }, vm.name) },
    { label: "State", value: stateBadges },
    { label: "Region", value: (vm) => names.region(vm.region) },
    { label: "Plan", value: (vm) => (names.plan(vm.plan) || { name: vm.plan }).name },
    { label: "Addresses", value: addressText },
    { label: "Price an hour", value: (vm) => money(vm.price_hourly, session.currency) },
  ];
  const create = h("a", { class: "button primary", href: "#/vms/new" }, "Create VM");
  return h(
    "div",
    {},
    pageHeader("VMs", create),
    pagedTable(columns, vms, { size: VMS_PER_PAGE, empty: "You have no VMs yet. Create one to get started." }),
  );
}

// ---- create -----------------------------------------------------------------------------

function planCard(plan, currency, checked) {
  const input = h("input", { type: "radio", name: "plan-choice", value: plan.id, checked, required: true });
  return h(
    "label",
    { class: "choice" },
    input,
    h("span", { class: "choice-title" }, plan.name),
    h("span", { class: "choice-price" }, `${money(plan.price_hourly, currency)} an hour`),
    h("span", { class: "choice-facts" }, `About ${money(plan.price_monthly_estimate, currency)} a month`),
    h("span", { class: "choice-facts" }, planFacts(plan)),
  );
}

function createNotices(session) {
  if (session.email_verified) return null;
  return alertBox(["Verify your e-mail address before you create a VM. ", h("a", { href: "#/verify" }, "Enter the token from the e-mail")], "info");
}

// Replace the API's wording for refusals a customer can fix with what to do next.
function createError(error, help) {
  replace(help);
  if (!(error instanceof ApiError)) return error;
  if (error.code === "insufficient_credit") {
    replace(help, alertBox(["Add credit, then create the VM. ", h("a", { href: "#/billing" }, "Add credit")], "info"));
  }
  if (error.code === "forbidden" && /verify your e-mail/i.test(error.message)) {
    replace(help, alertBox(["Your e-mail address is not verified yet. ", h("a", { href: "#/verify" }, "Enter the token from the e-mail")], "info"));
    return new ApiError(error.status, error.code, "Verify your e-mail address before you create a VM.", null);
  }
  return error;
}

export async function vmCreate({ session, navigate }) {
  const { catalog, ownImages, keys } = await loadChoices();
  const currency = session.currency;
  if (!catalog.regions.length) {
    return h("div", {}, pageHeader("Create VM"), alertBox("No region is open for new VMs at the moment.", "info"));
  }

  const regionSelect = selectControl("region", catalog.regions.map((region) => ({ value: region.id, label: region.name })));
  const planCards = h("div", { class: "cards", role: "radiogroup", "aria-label": "Plan", dataset: { field: "plan" } });
  const imageSelect = selectControl("image", []);
  const help = h("div", { class: "create-help" });

  function showRegion(regionId) {
    const plans = plansInRegion(catalog, regionId);
    replace(planCards, plans.length ? plans.map((plan, index) => planCard(plan, currency, index === 0)) : h("p", { class: "empty" }, "No plan is offered in this region."));
    const images = imageOptions(catalog, ownImages, regionId);
    fillSelect(imageSelect, images.length ? images : [{ value: "", label: "No image in this region" }]);
  }
  regionSelect.addEventListener("change", () => showRegion(regionSelect.value));
  showRegion(regionSelect.value);

  const createForm = form({
    submitLabel: "Create VM",
    busyLabel: "Creating…",
    className: "wide",
    extra: help,
    fields: [
      { name: "region", label: "Region", control: regionSelect },
      { name: "plan", label: "Plan", control: planCards, hint: "Billed by the hour from the moment the VM is running; the monthly figure is 730 hours." },
      { name: "image", label: "Image", control: imageSelect },
      { name: "ssh_key", label: "SSH key", type: "select", required: false, options: sshKeyOptions(keys), hint: sshKeyHint() },
      { name: "name", label: "Name", placeholder: "web1", maxLength: 64, autocomplete: "off", hint: "Letters, digits, dots and hyphens, starting with a letter or digit." },
    ],
    onSubmit: async (values) => {
      const checked = planCards.querySelector("input:checked");
      const body = { name: values.name.trim(), region: values.region, plan: checked ? checked.value : "", image: values.image };
      if (values.ssh_key) body.ssh_key = values.ssh_key;
      try {
        const vm = await post("v1/vms", body);
        replace(help);
        navigate(vmHref(vm));
        return `VM ${vm.name} is being created.`;
      } catch (error) {
        throw createError(error, help);
      }
    },
  });
  return h("div", {}, pageHeader("Create VM"), createNotices(session), h("section", { class: "card" }, createForm));
}

// ---- one VM -----------------------------------------------------------------------------

function stateNotice(vm) {
  if (vm.state === "provisioning") return alertBox("The VM is being created. This page updates by itself; billing starts once it runs.", "info");
  if (vm.state === "deleting") return alertBox("The VM is being deleted. This page updates by itself.", "info");
  if (vm.state === "deleted") return alertBox(["This VM is deleted. ", h("a", { href: "#/vms" }, "Back to your VMs")], "info");
  if (vm.state === "error") return alertBox(`The provider could not create this VM${vm.error ? `: ${vm.error}` : ""}. It is not charged; delete it to clear it away.`);
  if (vm.suspended !== "no") {
    return alertBox(
      [
        vm.suspended === "auto"
          ? "This VM is suspended because the account ran out of credit. Only stop and delete are possible until credit is added. "
          : "This VM is suspended by an administrator. Only stop and delete are possible; contact support for details. ",
        h("a", { href: vm.suspended === "auto" ? "#/billing" : "#/tickets" }, vm.suspended === "auto" ? "Add credit" : "Contact support"),
      ],
      "error",
    );
  }
  return null;
}

function vmFacts(vm, context) {
  const plan = context.names.plan(vm.plan);
  const pairs = [
    ["State", stateBadges(vm)],
    ["Power", vm.state === "active" ? vm.power : "—"],
    ["Region", context.names.region(vm.region)],
    ["Plan", plan ? `${plan.name}, ${money(vm.price_hourly, context.currency)} an hour` : `${vm.plan}, ${money(vm.price_hourly, context.currency)} an hour`],
    ["Image", context.names.image(vm.image)],
    ["Created", dateTime(vm.created_at)],
    ["Billed since", vm.billing_started_at ? dateTime(vm.billing_started_at) : "not yet"],
    ["Addresses", (vm.addresses || []).length ? vm.addresses.map((address) => address.ip).join(", ") : "none yet"],
  ];
  if (vm.deleted_at) pairs.push(["Deleted", dateTime(vm.deleted_at)]);
  const login = vm.login_details ? h("details", { class: "login-details" }, h("summary", {}, "Show login details"), h("p", { class: "secret" }, vm.login_details)) : null;
  return section("Details", factList(pairs), login);
}

function powerButtons(vm, context, update) {
  const power = (action, label, success) =>
    actionButton(label, async () => update(await post(`${context.vmPath}/${action}`)), { busyLabel: `${label}…`, success });
  if (vm.suspended !== "no") return [power("stop", "Stop", "Stop sent.")];
  const buttons = [];
  if (vm.power !== "online") buttons.push(power("start", "Start", "Start sent."));
  if (vm.power !== "offline") buttons.push(power("stop", "Stop", "Stop sent."), power("reboot", "Reboot", "Reboot sent."));
  return buttons;
}

function consoleControl(context) {
  const slot = h("div", { class: "console-link", "aria-live": "polite" });
  const open = actionButton(
    "Open console",
    async () => {
      const answer = await get(`${context.vmPath}/console`);
      const url = new URL(answer.url, location.href);
      if (url.protocol !== "https:" && url.protocol !== "http:") throw new ApiError(0, "invalid_url", "The provider returned a console address that is not a web page.", null);
      replace(slot, h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer", class: "button primary" }, "Open the console in a new tab"));
    },
    { busyLabel: "Getting the console…" },
  );
  return h("div", { class: "button-row" }, open, slot);
}

function renameForm(vm, context, update) {
  return form({
    submitLabel: "Rename",
    busyLabel: "Renaming…",
    fields: [{ name: "name", label: "New name", value: vm.name, maxLength: 64, autocomplete: "off" }],
    onSubmit: async (values) => {
      update(await patch(context.vmPath, { name: values.name.trim() }));
      return "VM renamed.";
    },
  });
}

function reimageForm(vm, context, update) {
  const options = imageOptions(context.catalog, context.ownImages, vm.region);
  return form({
    submitLabel: "Reinstall",
    busyLabel: "Reinstalling…",
    fields: [
      { name: "image", label: "Image to install", type: "select", options, value: vm.image },
      { name: "ssh_key", label: "SSH key", type: "select", required: false, options: sshKeyOptions(context.keys), hint: sshKeyHint() },
    ],
    onSubmit: async (values) => {
      const imageName = context.names.image(values.image);
      const confirmed = await confirmDialog(`Reinstall ${vm.name} from ${imageName}? Everything on its disk is erased.`, "Reinstall");
      if (!confirmed) return null;
      const body = { image: values.image };
      if (values.ssh_key) body.ssh_key = values.ssh_key;
      update(await post(`${context.vmPath}/reimage`, body));
      return `${vm.name} is being reinstalled from ${imageName}.`;
    },
  });
}

function resizeForm(vm, context, update) {
  const plans = plansInRegion(context.catalog, vm.region).filter((plan) => plan.id !== vm.plan);
  if (!plans.length) return h("p", { class: "empty" }, "No other plan is offered in this region.");
  const options = plans.map((plan) => ({ value: plan.id, label: `${plan.name}: ${planPriceText(plan, context.currency)}` }));
  return form({
    submitLabel: "Resize",
    busyLabel: "Resizing…",
    fields: [{ name: "plan", label: "New plan", type: "select", options, hint: "The new price applies from the VM's next billing hour." }],
    onSubmit: async (values) => {
      const plan = context.names.plan(values.plan);
      const confirmed = await confirmDialog(`Resize ${vm.name} to ${plan.name}? It then costs ${planPriceText(plan, context.currency)}.`, "Resize");
      if (!confirmed) return null;
      update(await post(`${context.vmPath}/resize`, { plan: values.plan }));
      return `${vm.name} now has plan ${plan.name}.`;
    },
  });
}

function snapshotForm(vm, context) {
  return form({
    submitLabel: "Take snapshot",
    busyLabel: "Starting…",
    fields: [{ name: "name", label: "Snapshot name", value: `${vm.name}-snapshot`, maxLength: 64, autocomplete: "off", hint: "Snapshots are billed as image storage per GB-hour." }],
    onSubmit: async (values) => {
      await post(`${context.vmPath}/snapshots`, { name: values.name.trim() });
      return "Snapshot started. It appears under Images.";
    },
  });
}

function reverseDnsForm(address, context) {
  return form({
    submitLabel: "Save",
    busyLabel: "Saving…",
    className: "inline-form",
    fields: [{ name: "hostname", label: `Reverse DNS for ${address.ip}`, value: address.reverse_dns || "", placeholder: "host.example.com", autocomplete: "off" }],
    onSubmit: async (values) => {
      const saved = await put(`${context.vmPath}/addresses/${id(address.ip)}/reverse-dns`, { hostname: values.hostname.trim() });
      return `Reverse DNS for ${saved.ip} set to ${saved.reverse_dns}.`;
    },
  });
}

function addressTable(addresses, context) {
  const rows = addresses.map((address) => ({ ...address, editable: Boolean(address.reverse_dns_editable) }));
  return pagedTable(
    [
      { label: "Address", value: (address) => address.ip },
      { label: "Version", value: (address) => `IPv${address.version}` },
      { label: "Type", value: (address) => (address.private ? "private" : "public") },
      { label: "Reverse DNS", value: (address) => (address.editable ? reverseDnsForm(address, context) : address.reverse_dns || "—") },
    ],
    rows,
    { empty: "This VM has no addresses yet." },
  );
}

function addressesSection(vm, context) {
  if (!context.capabilities.has("addresses")) return section("Addresses", addressTable(vm.addresses || [], context));
  return section("Addresses", loaded(() => get(`${context.vmPath}/addresses`), (answer) => addressTable(answer.addresses, context)));
}

function providerActionForm(action, context) {
  const values = Object.entries(action.options || {});
  const fields = values.length
    ? [{ name: "value", label: `${action.label}: choose`, type: "select", options: values.map(([value, label]) => ({ value, label: String(label) })) }]
    : [];
  return h(
    "div",
    { class: "provider-action" },
    h("h3", {}, action.label),
    action.description ? h("p", { class: "hint" }, action.description) : null,
    form({
      submitLabel: action.label,
      busyLabel: "Running…",
      fields,
      onSubmit: async (chosen) => {
        if (action.dangerous && !(await confirmDialog(`Run "${action.label}" on this VM? ${action.description || ""}`.trim(), action.label))) return null;
        const body = values.length ? { value: chosen.value } : {};
        await post(`${context.vmPath}/actions/${id(action.action)}`, body);
        return `${action.label} done.`;
      },
    }),
  );
}

function providerActionsSection(context) {
  return section(
    "Provider actions",
    loaded(
      () => get(`${context.vmPath}/actions`),
      (answer) => (answer.actions.length ? answer.actions.map((action) => providerActionForm(action, context)) : h("p", { class: "empty" }, "The provider offers no extra actions for this VM.")),
    ),
  );
}

function deleteButton(vm, context, update) {
  return actionButton(
    "Delete VM",
    async () => {
      const answer = await del(context.vmPath);
      if (answer && answer.state === "deleting") update(answer);
      else context.navigate("#/vms");
    },
    {
      kind: "danger",
      busyLabel: "Deleting…",
      confirmText: `Delete the VM "${vm.name}"? Its disk is erased and its addresses are released; this cannot be undone. The hours it ran are charged now.`,
      success: `VM ${vm.name} deleted.`,
    },
  );
}

function activeSections(vm, context, update) {
  const has = (capability) => context.capabilities.has(capability);
  const sections = [section("Power", h("div", { class: "button-row" }, powerButtons(vm, context, update)))];
  if (vm.suspended !== "no") return sections;
  if (has("console")) sections.push(section("Console", consoleControl(context)));
  sections.push(section("Rename", renameForm(vm, context, update)));
  if (has("reimage")) sections.push(section("Reinstall", reimageForm(vm, context, update)));
  if (has("resize")) sections.push(section("Resize", resizeForm(vm, context, update)));
  if (has("snapshot")) sections.push(section("Snapshot", snapshotForm(vm, context)));
  return sections;
}

// The action cards side by side, then the full-width address and provider action lists,
// then deletion last.
function vmSections(vm, context, update) {
  const sections = [];
  if (vm.state === "active") {
    sections.push(h("div", { class: "vm-sections" }, activeSections(vm, context, update)), addressesSection(vm, context));
    if (context.capabilities.has("actions")) sections.push(providerActionsSection(context));
  }
  if (vm.state !== "deleted" && vm.state !== "deleting") sections.push(section("Delete", deleteButton(vm, context, update)));
  return sections;
}

export async function vmDetail({ params, session, navigate }) {
  const vmPath = `v1/vms/${id(params.vmId)}`;
  const [vm, choices] = await Promise.all([get(vmPath), loadChoices()]);
  const context = {
    ...choices,
    vmPath,
    navigate,
    currency: session.currency,
    names: catalogNames(choices.catalog, choices.ownImages),
    capabilities: new Set(vm.capabilities || []),
  };
  const root = h("div", { class: "vm-page" });
  let stopPolling = () => {};

  function draw(current) {
    context.capabilities = new Set(current.capabilities || []);
    replace(root, pageHeader(current.name, h("a", { href: "#/vms" }, "All VMs")), stateNotice(current), vmFacts(current, context), vmSections(current, context, update));
    document.title = `${current.name} · Lobster`;
  }

  function update(current) {
    stopPolling();
    draw(current);
    if (TRANSITIONAL_STATES.has(current.state)) {
      stopPolling = pollUntilSettled(() => get(vmPath), draw, (next) => !TRANSITIONAL_STATES.has(next.state), { node: root });
    }
  }

  update(vm);
  return root;
}
