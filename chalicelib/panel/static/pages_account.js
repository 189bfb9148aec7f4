// Account settings, SSH keys and API keys. An API key's secret is in the create response
// only, so the page shows it once and never stores it. The key list carries no secrets.

import { h, replace } from "./dom.js";
import { ApiError, del, get, id, post } from "./api.js";
import { logOut } from "./app.js";
import { actionButton, alertBox, badge, dateTime, form, loaded, notify, pageHeader, pagedTable, section } from "./ui.js";

const PASSWORD_HINT = "At least 10 characters.";
const KEYS_PER_PAGE = 20;

// ---- settings ---------------------------------------------------------------------------

export function settings({ session }) {
  return h(
    "div",
    {},
    pageHeader("Settings"),
    section("E-mail address", emailFacts(session)),
    section("Password", passwordForm()),
    section("Sessions", sessionControls()),
  );
}

function emailFacts(session) {
  const status = session.email_verified ? badge("Verified", "ok") : badge("Not verified", "warn");
  const facts = h("dl", { class: "facts" }, h("dt", {}, "E-mail"), h("dd", {}, session.email), h("dt", {}, "Status"), h("dd", {}, status));
  if (session.email_verified) return facts;

  const resend = actionButton("Send a new token", () => post("v1/auth/verify-request"), {
    busyLabel: "Sending…",
    success: `A new token is on its way to ${session.email}.`,
  });
  return [
    facts,
    h("p", {}, "Creating VMs and images needs a verified address. Open the link in the e-mail we sent, or enter its token."),
    h("div", { class: "button-row" }, h("a", { class: "button primary", href: "#/verify" }, "Enter the token"), resend),
  ];
}

function passwordForm() {
  return form({
    fields: [
      { name: "current_password", label: "Current password", type: "password", autocomplete: "current-password" },
      { name: "new_password", label: "New password", type: "password", autocomplete: "new-password", hint: PASSWORD_HINT },
      { name: "new_password_confirmation", label: "Confirm new password", type: "password", autocomplete: "new-password" },
    ],
    submitLabel: "Change password",
    busyLabel: "Changing password…",
    onSubmit: async (values, node) => {
      if (values.new_password !== values.new_password_confirmation) {
        throw new ApiError(400, "invalid_request", "The two new passwords do not match.", "new_password_confirmation");
      }
      const result = await post("v1/account/password", { current_password: values.current_password, new_password: values.new_password });
      node.reset();
      const ended = result.sessions_ended || 0;
      return ended ? `Password changed. ${ended} other ${ended === 1 ? "session was" : "sessions were"} logged out.` : "Password changed.";
    },
  });
}

function sessionControls() {
  const button = h("button", { type: "button", onclick: logOut }, "Log out");
  const others = actionButton(
    "Log out everywhere else",
    async () => {
      const answer = await post("v1/auth/logout-others");
      const ended = answer.sessions_ended;
      notify(ended ? `${ended} other ${ended === 1 ? "session was" : "sessions were"} logged out.` : "No other session was open.");
    },
    { busyLabel: "Logging out…", confirmText: "Log out every other session of your account, in other browsers and through the API? API keys keep working." },
  );
  return [
    h("p", {}, "Log out here, or end every other session of your account. Changing your password ends the other sessions too."),
    h("div", { class: "button-row" }, button, others),
  ];
}

// ---- SSH keys ---------------------------------------------------------------------------

export function sshKeys() {
  const list = h("div", {});
  const reload = () => replace(list, loaded(() => get("v1/ssh-keys"), (answer) => sshKeyTable(answer.ssh_keys, reload)));
  reload();

  const addForm = form({
    fields: [
      { name: "name", label: "Name", maxLength: 64, hint: "A label to recognise the key by, such as the laptop it lives on." },
      {
        name: "public_key",
        label: "Public key",
        type: "textarea",
        rows: 4,
        hint: "One line from a .pub file: ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of 2048 bits or more.",
      },
    ],
    submitLabel: "Add key",
    busyLabel: "Adding…",
    onSubmit: async (values, node) => {
      const key = await post("v1/ssh-keys", { name: values.name, public_key: values.public_key.trim() });
      node.reset();
      reload();
      return `SSH key ${key.name} added.`;
    },
  });
  return h(
    "div",
    {},
    pageHeader("SSH keys"),
    h("p", {}, "New VMs can be created with one of these keys installed for log-in."),
    section("Your keys", list),
    section("Add a key", addForm),
  );
}

function sshKeyTable(keys, reload) {
  const columns = [
    { label: "Name", value: (key) => key.name },
    { label: "Type", value: (key) => (key.bits ? `${key.type} (${key.bits} bits)` : key.type) },
    { label: "Fingerprint", value: (key) => h("code", { class: "fingerprint" }, key.fingerprint) },
    { label: "Added", value: (key) => dateTime(key.created_at) },
    { label: "Actions", value: (key) => deleteKeyButton(key, reload) },
  ];
  return pagedTable(columns, keys, { size: KEYS_PER_PAGE, empty: "No SSH keys yet. Add one below to log in to new VMs without a password." });
}

function deleteKeyButton(key, reload) {
  const run = async () => {
    await del(`v1/ssh-keys/${id(key.id)}`);
    reload();
  };
  return actionButton("Delete", run, {
    busyLabel: "Deleting…",
    kind: "danger",
    confirmText: `Delete the SSH key ${key.name}? VMs that already have it keep it.`,
    success: `SSH key ${key.name} deleted.`,
  });
}

// ---- API keys ---------------------------------------------------------------------------

export async function apiKeys() {
  const { actions } = await get("v1/api-keys/actions");
  const list = h("div", {});
  const secretHolder = h("div", { class: "secret-holder" });
  const reload = () => replace(list, loaded(() => get("v1/api-keys"), (answer) => apiKeyTable(answer.api_keys, reload)));
  reload();

  const onCreated = (created) => {
    replace(secretHolder, secretBox(created, () => replace(secretHolder)));
    reload();
    secretHolder.querySelector("button").focus();
  };
  return h(
    "div",
    {},
    pageHeader("API keys"),
    h("p", {}, "An API key lets a script call the API as you. Send it as an Authorization: Bearer header. Keys cannot manage keys, passwords or sessions."),
    secretHolder,
    section("Your keys", list),
    section("Create a key", createKeyForm(actions, onCreated)),
  );
}

function createKeyForm(actions, onCreated) {
  const chooser = actionChooser(actions);
  return form({
    fields: [
      { name: "label", label: "Label", maxLength: 64, hint: "A name to recognise the key by, such as the script that uses it." },
      {
        name: "allowed_cidrs",
        label: "Allowed address ranges",
        type: "textarea",
        rows: 3,
        required: false,
        hint: "IPv4 or IPv6 ranges, one per line, such as 203.0.113.0/24 or 2001:db8::/32. Leave empty to allow any address.",
      },
    ],
    extra: chooser,
    className: "api-key-form",
    submitLabel: "Create key",
    busyLabel: "Creating…",
    onSubmit: async (values, node) => {
      const body = { label: values.label };
      const chosen = [...node.querySelectorAll('input[name="actions"]:checked')].map((box) => box.value);
      if (chosen.length) body.actions = chosen;
      const cidrs = (values.allowed_cidrs || "").split("\n").map((line) => line.trim()).filter(Boolean);
      if (cidrs.length) body.allowed_cidrs = cidrs;

      const created = await post("v1/api-keys", body);
      node.reset();
      onCreated(created);
      return null;
    },
  });
}

// A checkbox per action, grouped by resource ("vms:read" belongs to "vms").
function actionChooser(actions) {
  const groups = new Map();
  for (const action of actions) {
    const resource = action.split(":")[0];
    if (!groups.has(resource)) groups.set(resource, []);
    groups.get(resource).push(action);
  }
  const boxes = [...groups.entries()].map(([resource, names]) =>
    h(
      "div",
      { class: "action-group" },
      h("p", { class: "action-group-name" }, resource),
      names.map((name) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "actions", value: name }), name)),
    ),
  );
  return h(
    "fieldset",
    { class: "field action-chooser", "aria-describedby": "actions-hint" },
    h("legend", {}, "Allowed actions", h("span", { class: "optional" }, " (optional)")),
    h("p", { class: "hint", id: "actions-hint" }, "Select the actions this key may call. Leave every box empty to allow every action."),
    h("div", { class: "action-grid" }, boxes),
    h("p", { class: "field-error", hidden: true, dataset: { errorFor: "actions" } }),
  );
}

function secretBox(created, dismiss) {
  const secret = h("code", { class: "secret", id: "new-api-key-secret" }, created.secret);
  const copy = h("button", { type: "button", class: "primary" }, "Copy secret");
  copy.addEventListener("click", () => copySecret(created.secret, secret));
  const done = h("button", { type: "button", onclick: dismiss }, "I have saved it");
  return h(
    "section",
    { class: "card secret-card", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title" }, `Secret of the new key “${created.label}”`),
    alertBox("Copy this secret now. Lobster stores only a hash of it, so it cannot be shown again. Anyone with the secret can use the key.", "info"),
    secret,
    h("div", { class: "button-row" }, copy, done),
  );
}

async function copySecret(text, node) {
  try {
    await navigator.clipboard.writeText(text);
    notify("Secret copied to the clipboard.");
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    notify("The browser did not allow copying. The secret is selected: press Ctrl+C or Cmd+C.", "error");
  }
}

function apiKeyTable(keys, reload) {
  const columns = [
    { label: "Label", value: (key) => key.label },
    { label: "Actions", value: (key) => (key.actions.length ? key.actions.join(", ") : "Every action") },
    { label: "Address ranges", value: (key) => (key.allowed_cidrs.length ? key.allowed_cidrs.join(", ") : "Any address") },
    { label: "Created", value: (key) => dateTime(key.created_at) },
    { label: "Last used", value: lastUse },
    { label: "Revoke", value: (key) => revokeButton(key, reload) },
  ];
  return pagedTable(columns, keys, { size: KEYS_PER_PAGE, empty: "No API keys yet." });
}

function lastUse(key) {
  if (!key.last_used_at) return "Never";
  return key.last_used_ip ? `${dateTime(key.last_used_at)} from ${key.last_used_ip}` : dateTime(key.last_used_at);
}

function revokeButton(key, reload) {
  const run = async () => {
    await del(`v1/api-keys/${id(key.id)}`);
    reload();
  };
  return actionButton("Revoke", run, {
    busyLabel: "Revoking…",
    kind: "danger",
    confirmText: `Revoke the API key ${key.label}? Scripts that use it stop working at once.`,
    success: `API key ${key.label} revoked.`,
  });
}
