// Shared pieces of every page: forms that show progress and put API errors next to the field
// they name, notices, confirmation dialogs, tables, paging, charts and formatting.

import { h, s, replace } from "./dom.js";
import { ApiError } from "./api.js";

const TOAST_MILLISECONDS = 6000;
let fieldCounter = 0;

// ---- notices ----------------------------------------------------------------------------

export function notify(message, kind = "success") {
  const toasts = document.getElementById("toasts");
  const toast = h("div", { class: `toast toast-${kind}` }, message);
  toasts.append(toast);
  setTimeout(() => toast.remove(), TOAST_MILLISECONDS);
}

export function errorText(error) {
  return error instanceof ApiError ? error.message : "Something went wrong. Try again.";
}

export function alertBox(message, kind = "error") {
  return h("div", { class: `alert alert-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

// ---- forms ------------------------------------------------------------------------------

function fieldControl(field, inputId, hintId) {
  const common = {
    id: inputId,
    name: field.name,
    required: field.required !== false,
    "aria-describedby": hintId,
    autocomplete: field.autocomplete || null,
    dataset: { field: field.name },
  };
  if (field.type === "select") {
    const options = (field.options || []).map((option) =>
      h("option", { value: option.value, selected: option.value === field.value }, option.label),
    );
    return h("select", common, options);
  }
  if (field.type === "textarea") {
    return h("textarea", { ...common, rows: field.rows || 5, maxlength: field.maxLength || null }, field.value || "");
  }
  if (field.type === "checkbox") {
    return h("input", { ...common, type: "checkbox", required: false, checked: Boolean(field.value) });
  }
  return h("input", {
    ...common,
    type: field.type || "text",
    value: field.value ?? "",
    placeholder: field.placeholder || null,
    maxlength: field.maxLength || null,
    min: field.min ?? null,
    max: field.max ?? null,
    step: field.step ?? null,
    inputmode: field.inputmode || null,
  });
}

function fieldRow(field) {
  fieldCounter += 1;
  const inputId = `field-${field.name}-${fieldCounter}`;
  const hintId = `${inputId}-hint`;
  const errorId = `${inputId}-error`;
  const control = field.control || fieldControl(field, inputId, `${hintId} ${errorId}`);
  if (field.control) control.id = control.id || inputId;
  const label = h("label", { for: control.id }, field.label, field.required === false ? h("span", { class: "optional" }, " (optional)") : null);
  const hint = field.hint ? h("p", { class: "hint", id: hintId }, field.hint) : null;
  const error = h("p", { class: "field-error", id: errorId, hidden: true, dataset: { errorFor: field.name } });
  const row = h("div", { class: field.type === "checkbox" ? "field field-checkbox" : "field" }, label, control, hint, error);
  return row;
}

function readValues(formNode, fields) {
  const values = {};
  for (const field of fields) {
    const control = formNode.querySelector(`[data-field="${field.name}"]`);
    if (!control) continue;
    if (field.type === "checkbox") values[field.name] = control.checked;
    else if (field.type === "number") values[field.name] = control.value === "" ? null : Number(control.value);
    else values[field.name] = control.value;
    if (field.optional_empty_is_null !== false && values[field.name] === "" && field.required === false) {
      values[field.name] = null;
    }
  }
  return values;
}

function clearErrors(formNode) {
  for (const node of formNode.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const node of formNode.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  formNode.querySelector(".form-error").hidden = true;
}

// Put an API error next to the field it names; errors without a known field go above the button.
export function showError(formNode, error) {
  const field = error instanceof ApiError ? error.field : null;
  const target = field ? formNode.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  if (target) {
    target.textContent = errorText(error);
    target.hidden = false;
    const control = formNode.querySelector(`[data-field="${CSS.escape(field)}"]`);
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.focus();
    }
    return;
  }
  const general = formNode.querySelector(".form-error");
  general.textContent = errorText(error);
  general.hidden = false;
}

// form({fields, submitLabel, busyLabel, onSubmit}) returns a <form>. onSubmit receives the
// values and may return a message to show; an ApiError it throws is shown by its field.
export function form({ fields, submitLabel = "Save", busyLabel = "Saving…", onSubmit, extra = null, className = "" }) {
  const button = h("button", { type: "submit", class: "primary" }, submitLabel);
  const general = h("p", { class: "form-error", role: "alert", hidden: true });
  const node = h("form", { class: `form ${className}`, novalidate: true }, fields.map(fieldRow), extra, general, h("div", { class: "actions" }, button));

  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    clearErrors(node);
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = busyLabel;
    try {
      const message = await onSubmit(readValues(node, fields), node);
      if (message) notify(message);
    } catch (error) {
      showError(node, error);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = submitLabel;
    }
  });
  return node;
}

// A button that runs an action, shows progress while it runs and reports the result.
export function actionButton(label, run, { busyLabel = "Working…", kind = "", confirmText = null, success = null } = {}) {
  const button = h("button", { type: "button", class: kind || null }, label);
  button.addEventListener("click", async () => {
    if (confirmText && !(await confirmDialog(confirmText, label))) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = busyLabel;
    try {
      await run();
      if (success) notify(success);
    } catch (error) {
      notify(errorText(error), "error");
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.textContent = label;
    }
  });
  return button;
}

// ---- dialogs ----------------------------------------------------------------------------

export function confirmDialog(text, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", value: "cancel" }, "Cancel");
    const confirm = h("button", { type: "button", class: "danger", value: "confirm" }, confirmLabel);
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "dialog-text" }, h("p", { id: "dialog-text" }, text), h("div", { class: "actions" }, cancel, confirm));
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => close(false));
    confirm.addEventListener("click", () => close(true));
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// ---- tables and lists -------------------------------------------------------------------

// columns: [{label, value: (row) => text or node}]
export function table(columns, rows, { empty = "Nothing here yet.", caption = null } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((column) => h("td", { "data-label": column.label }, column.value(row)))))),
    ),
  );
}

// A list that loads page by page: load(cursor) returns {items, cursor}; render(items) returns a node.
export function pagedList(load, render) {
  const holder = h("div", { class: "paged" });
  const more = h("button", { type: "button", class: "more" }, "Load more");
  const pages = h("div", {});
  let cursor = null;

  async function next() {
    more.disabled = true;
    more.textContent = "Loading…";
    try {
      const page = await load(cursor);
      pages.append(render(page.items));
      cursor = page.cursor || null;
      more.hidden = !cursor;
    } catch (error) {
      pages.append(alertBox(errorText(error)));
    } finally {
      more.disabled = false;
      more.textContent = "Load more";
    }
  }

  more.addEventListener("click", next);
  holder.append(pages, more);
  next();
  return holder;
}

// Split an in-memory list into pages of `size` with previous and next buttons.
export function pagedTable(columns, rows, { size = 25, empty } = {}) {
  const holder = h("div", { class: "paged" });
  let page = 0;
  const pageCount = Math.max(1, Math.ceil(rows.length / size));
  function draw() {
    const shown = rows.slice(page * size, (page + 1) * size);
    const prev = h("button", { type: "button", disabled: page === 0, onclick: () => { page -= 1; draw(); } }, "Previous");
    const next = h("button", { type: "button", disabled: page >= pageCount - 1, onclick: () => { page += 1; draw(); } }, "Next");
    const nav = pageCount > 1 ? h("div", { class: "pager" }, prev, h("span", {}, `Page ${page + 1} of ${pageCount}`), next) : null;
    replace(holder, table(columns, shown, { empty }), nav);
  }
  draw();
  return holder;
}

// ---- charts -----------------------------------------------------------------------------

// A bar chart drawn as SVG: points [{label, value}], values in any unit; `limit` draws a line.
export function barChart(points, { title, unit = "", limit = null, limitLabel = "", height = 160 } = {}) {
  const width = Math.max(280, points.length * 22);
  const top = Math.max(limit || 0, ...points.map((point) => point.value), 1);
  const barWidth = width / Math.max(points.length, 1);
  const scale = (value) => (value / top) * (height - 20);
  const bars = points.map((point, index) => {
    const barHeight = scale(point.value);
    return s(
      "rect",
      { x: index * barWidth + 2, y: height - barHeight, width: Math.max(barWidth - 4, 1), height: barHeight, class: "bar" },
      s("title", {}, `${point.label}: ${point.value}${unit}`),
    );
  });
  const line = limit === null ? null : s("line", { x1: 0, x2: width, y1: height - scale(limit), y2: height - scale(limit), class: "limit" }, s("title", {}, limitLabel));
  const chart = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart", preserveAspectRatio: "none" }, bars, line);
  const summary = h("details", { class: "chart-data" }, h("summary", {}, "Show as table"), table([{ label: "Label", value: (p) => p.label }, { label: `Value${unit ? ` (${unit.trim()})` : ""}`, value: (p) => String(p.value) }], points));
  return h("figure", { class: "figure" }, h("figcaption", {}, title), chart, summary);
}

// A horizontal meter of usage against a pool.
export function meter(used, total, label) {
  const ratio = total > 0 ? Math.min(used / total, 1) : 0;
  let level = "ok";
  if (ratio >= 1) level = "full";
  else if (ratio >= 0.85) level = "high";
  return h(
    "div",
    { class: "meter", role: "meter", "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": Math.min(used, total), "aria-label": label },
    s("svg", { viewBox: "0 0 100 8", preserveAspectRatio: "none", class: "meter-bar" }, s("rect", { x: 0, y: 0, width: 100, height: 8, class: "meter-track" }), s("rect", { x: 0, y: 0, width: ratio * 100, height: 8, class: `meter-fill meter-${level}` })),
  );
}

// ---- formatting -------------------------------------------------------------------------

// Money arrives as {amount: "12.345678", micros: 12345678}; show 2 decimals unless finer.
export function money(value, currency = "") {
  if (!value) return "";
  const text = typeof value === "string" ? value : value.amount;
  const [whole, fraction = ""] = text.split(".");
  const trimmed = fraction.replace(/0+$/, "");
  const shown = trimmed.length <= 2 ? `${whole}.${fraction.padEnd(2, "0").slice(0, 2)}` : `${whole}.${trimmed}`;
  return currency ? `${shown} ${currency}` : shown;
}

export function dateTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function bytes(count) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(count) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind ? `badge-${kind}` : ""}` }, text);
}

// ---- page frame -------------------------------------------------------------------------

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", {}, title), actions.length ? h("div", { class: "page-actions" }, actions) : null);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

// Render the result of an async loader into a placeholder, with a loading text and errors.
export function loaded(load, render) {
  const holder = h("div", { class: "loaded", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading…"));
  load()
    .then((data) => replace(holder, render(data)))
    .catch((error) => replace(holder, alertBox(errorText(error))))
    .finally(() => holder.removeAttribute("aria-busy"));
  return holder;
}

// ---- admin pages (pages_admin_users.js, pages_admin_catalog.js) ---------------------------

// A definition list of [label, value] pairs; a value is text or a node.
export function factList(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

// A filter form: applying it puts the values in the address ("#/admin/vms?state=active"), so a
// filtered view can be shared and the back button returns to the previous filter. A checked
// checkbox becomes "true"; empty values are left out.
export function filterForm(fields, base, navigate, submitLabel = "Apply filters") {
  return form({
    fields,
    submitLabel,
    busyLabel: "Loading…",
    className: "filters",
    onSubmit: (values) => {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(values)) {
        if (value === true) query.set(name, "true");
        else if (typeof value === "string" && value.trim()) query.set(name, value.trim());
      }
      const text = query.toString();
      navigate(text ? `#${base}?${text}` : `#${base}`);
    },
  });
}

// An action button (see actionButton) whose error also stays on the page next to it, for
// refusals the reader has to study, such as an account that still owns VMs.
export function actionWithResult(label, run, options) {
  const result = h("div", { class: "action-result", "aria-live": "polite" });
  const button = actionButton(
    label,
    async () => {
      replace(result);
      try {
        await run(result);
      } catch (error) {
        replace(result, alertBox(errorText(error)));
        throw error;
      }
    },
    options,
  );
  return { button, result };
}

// A page drawn by draw(data, reload) from load()'s result. reload() draws it again after a
// change. When a reload fails, a notice reports it and the old content stays.
export async function reloadingPage(load, draw) {
  const holder = h("div", { class: "reloading-page" });
  const reload = async () => {
    try {
      replace(holder, draw(await load(), reload));
    } catch (error) {
      notify(errorText(error), "error");
    }
  };
  replace(holder, draw(await load(), reload));
  return holder;
}

// ---- VM, image and billing pages (pages_vms.js, pages_images.js, pages_billing.js) -------

const POLL_MILLISECONDS = 2000;

// Call load() every `every` milliseconds and hand each result to apply(), until settled(result)
// is true, a load fails with a 4xx response, or the user leaves the page: the hash changes, or
// `node` (the page's root element) is not on the page when a tick comes.
// Returns stop(), which ends the polling at once; no timer is left running after any of these.
export function pollUntilSettled(load, apply, settled, { every = POLL_MILLISECONDS, node = null } = {}) {
  const startHash = location.hash;
  const left = () => location.hash !== startHash || (node !== null && !node.isConnected);
  let timer = null;
  let stopped = false;

  function stop() {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener("hashchange", stop);
  }

  async function tick() {
    if (stopped || left()) return stop();
    try {
      const result = await load();
      if (stopped || left()) return stop();
      apply(result);
      if (settled(result)) return stop();
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        notify(errorText(error), "error");
        return stop();
      }
    }
    timer = setTimeout(tick, every);
    return null;
  }

  window.addEventListener("hashchange", stop);
  timer = setTimeout(tick, every);
  return stop;
}

const MICROS_PER_UNIT = 1000000;

// Format integer micro-units as decimal text with at least two decimals (7500 -> "0.0075"),
// by integer division only, so no floating-point rounding reaches a displayed amount.
export function formatMicros(micros) {
  const sign = micros < 0 ? "-" : "";
  const magnitude = Math.abs(micros);
  const whole = Math.floor(magnitude / MICROS_PER_UNIT);
  const fraction = String(magnitude % MICROS_PER_UNIT).padStart(6, "0").replace(/0+$/, "").padEnd(2, "0");
  return `${sign}${whole}.${fraction}`;
}

// A bar chart of amounts: points [{label, micros}]. Bar heights are scaled from the integer
// micro-units, and every label and table cell shows the amount through formatMicros.
export function moneyBarChart(points, { title, currency = "", height = 160 } = {}) {
  const width = Math.max(280, points.length * 22);
  const top = Math.max(1, ...points.map((point) => point.micros));
  const barWidth = width / Math.max(points.length, 1);
  const shown = (point) => `${formatMicros(point.micros)}${currency ? ` ${currency}` : ""}`;
  const bars = points.map((point, index) => {
    const barHeight = (point.micros / top) * (height - 20);
    return s(
      "rect",
      { x: index * barWidth + 2, y: height - barHeight, width: Math.max(barWidth - 4, 1), height: barHeight, class: "bar" },
      s("title", {}, `${point.label}: ${shown(point)}`),
    );
  });
  const chart = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart", preserveAspectRatio: "none" }, bars);
  const rows = table([{ label: "Day", value: (point) => point.label }, { label: "Amount", value: shown }], points);
  const axis = points.length ? h("div", { class: "chart-axis", "aria-hidden": "true" }, h("span", {}, points[0].label), h("span", {}, points[points.length - 1].label)) : null;
  return h("figure", { class: "figure" }, h("figcaption", {}, title), chart, axis, h("details", { class: "chart-data" }, h("summary", {}, "Show as table"), rows));
}
