// Pages for visitors and new accounts: log in, sign up, e-mail verification and password
// reset. Tokens from e-mailed links arrive in the URL fragment, which browsers never send to
// the server, so they stay out of server logs.

import { h, replace } from "./dom.js";
import { ApiError, post } from "./api.js";
import { actionButton, alertBox, errorText, form, pageHeader } from "./ui.js";

// A local panel route such as "#/vms/vm_1"; anything else is ignored as a redirect target.
const LOCAL_HASH = /^#\/(?![/\\])[^\s]*$/;
const PASSWORD_HINT = "At least 10 characters.";

function authCard(...children) {
  return h("div", { class: "auth-page" }, h("section", { class: "card" }, children));
}

function safeNext(next) {
  return typeof next === "string" && LOCAL_HASH.test(next) ? next : "#/";
}

// ---- log in -----------------------------------------------------------------------------

export function logIn({ query, navigate, refreshSession }) {
  const loginForm = form({
    fields: [
      { name: "email", label: "E-mail", type: "email", autocomplete: "username" },
      { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
    ],
    submitLabel: "Log in",
    busyLabel: "Logging in…",
    onSubmit: async (values) => {
      await post("v1/auth/login", { email: values.email, password: values.password, session: "cookie" });
      await refreshSession();
      navigate(safeNext(query.next));
    },
  });
  return authCard(
    h("h1", {}, "Log in"),
    loginForm,
    h(
      "p",
      { class: "auth-links" },
      h("a", { href: "#/signup" }, "Create an account"),
      h("a", { href: "#/reset-request" }, "Forgot your password?"),
    ),
  );
}

// ---- sign up ----------------------------------------------------------------------------

export function signUp({ refreshSession }) {
  const holder = h("div", {});
  const signupForm = form({
    fields: [
      { name: "email", label: "E-mail", type: "email", autocomplete: "email" },
      { name: "password", label: "Password", type: "password", autocomplete: "new-password", hint: PASSWORD_HINT },
    ],
    submitLabel: "Create account",
    busyLabel: "Creating account…",
    onSubmit: async (values) => {
      const account = await post("v1/auth/signup", { email: values.email, password: values.password });
      const loggedIn = await logInQuietly(values.email, values.password, refreshSession);
      replace(holder, signedUp(account.email, loggedIn));
    },
  });
  replace(
    holder,
    h("h1", {}, "Create an account"),
    h("p", {}, "Lobster bills by the hour from prepaid credit. After signing up, confirm your e-mail address and add credit to create VMs."),
    signupForm,
    h("p", { class: "auth-note" }, "Already have an account? ", h("a", { href: "#/login" }, "Log in")),
  );
  return authCard(holder);
}

// Log the new account in so the verification link works in this browser straight away. A
// failure (a rate limit, say) only means the visitor logs in by hand later.
async function logInQuietly(email, password, refreshSession) {
  try {
    await post("v1/auth/login", { email, password, session: "cookie" });
    await refreshSession();
    return true;
  } catch (error) {
    return false;
  }
}

function signedUp(email, loggedIn) {
  return [
    h("h1", {}, "Check your e-mail"),
    alertBox(`Your account is ready. We sent a verification link to ${email}. Open it to confirm the address; the link works for 48 hours.`, "success"),
    h("p", {}, "You can also paste the token from the e-mail on the verification page."),
    h(
      "p",
      { class: "button-row" },
      h("a", { class: "button primary", href: "#/verify" }, "Enter the token"),
      loggedIn ? h("a", { class: "button", href: "#/" }, "Go to the dashboard") : h("a", { class: "button", href: "#/login" }, "Log in"),
    ),
  ];
}

// ---- e-mail verification ----------------------------------------------------------------

export async function verifyEmail({ query, session, refreshSession }) {
  const holder = h("div", {});

  async function submitToken(token) {
    await post("v1/auth/verify", { token: token.trim() });
    const current = await refreshSession();
    replace(holder, verified(current));
  }

  let failure = null;
  if (query.token) {
    try {
      await submitToken(query.token);
      return authCard(holder);
    } catch (error) {
      failure = error;
    }
  }
  if (session && session.email_verified) {
    replace(holder, verified(session));
    return authCard(holder);
  }
  replace(holder, verifyForm(session, query.token, failure, submitToken));
  return authCard(holder);
}

function verified(session) {
  const next = session
    ? h("a", { class: "button primary", href: "#/" }, "Go to the dashboard")
    : h("a", { class: "button primary", href: "#/login" }, "Log in");
  return [
    h("h1", {}, "E-mail address verified"),
    alertBox(session ? `${session.email} is verified. You can now create VMs.` : "Your e-mail address is verified. Log in to create VMs.", "success"),
    h("p", { class: "button-row" }, next),
  ];
}

function verifyForm(session, token, failure, submitToken) {
  const tokenForm = form({
    fields: [{ name: "token", label: "Verification token", value: token || "", autocomplete: "off", hint: "The token from the e-mail we sent when you signed up." }],
    submitLabel: "Verify",
    busyLabel: "Verifying…",
    onSubmit: (values) => submitToken(values.token || ""),
  });
  const resend = session && !session.email_verified ? resendBlock(session) : null;
  return [
    h("h1", {}, "Verify your e-mail address"),
    failure ? alertBox(`The link did not work: ${errorText(failure)}. Ask for a new token if it has expired.`) : null,
    tokenForm,
    resend,
  ];
}

function resendBlock(session) {
  const button = actionButton("Send a new token", () => post("v1/auth/verify-request"), {
    busyLabel: "Sending…",
    success: `A new token is on its way to ${session.email}.`,
  });
  return h("div", { class: "auth-extra" }, h("p", {}, `No e-mail? We can send a new token to ${session.email}.`), button);
}

// ---- password reset ---------------------------------------------------------------------

export function requestReset() {
  const holder = h("div", {});
  const resetForm = form({
    fields: [{ name: "email", label: "E-mail", type: "email", autocomplete: "email" }],
    submitLabel: "Send reset link",
    busyLabel: "Sending…",
    onSubmit: async (values) => {
      await post("v1/auth/reset-request", { email: values.email });
      replace(holder, resetRequested());
    },
  });
  replace(
    holder,
    h("h1", {}, "Reset your password"),
    h("p", {}, "Enter the e-mail address of your account. We send it a link to choose a new password."),
    resetForm,
    h("p", { class: "auth-links" }, h("a", { href: "#/login" }, "Back to log in")),
  );
  return authCard(holder);
}

function resetRequested() {
  return [
    h("h1", {}, "Check your e-mail"),
    alertBox("If an account uses this address, we sent it a link to reset the password. The link works once and expires soon.", "info"),
    h("p", { class: "button-row" }, h("a", { class: "button", href: "#/reset" }, "I have a token"), h("a", { class: "button", href: "#/login" }, "Back to log in")),
  ];
}

export function resetPassword({ query, refreshSession }) {
  const holder = h("div", {});
  const fields = [
    query.token ? null : { name: "token", label: "Reset token", autocomplete: "off", hint: "The token from the reset e-mail." },
    { name: "new_password", label: "New password", type: "password", autocomplete: "new-password", hint: PASSWORD_HINT },
    { name: "new_password_confirmation", label: "Confirm new password", type: "password", autocomplete: "new-password" },
  ].filter(Boolean);
  const resetForm = form({
    fields,
    submitLabel: "Change password",
    busyLabel: "Changing password…",
    onSubmit: async (values) => {
      const token = (query.token || values.token || "").trim();
      await post("v1/auth/reset", { token, new_password: values.new_password, new_password_confirmation: values.new_password_confirmation }).catch(explainTokenError);
      await refreshSession();
      replace(holder, passwordReset());
    },
  });
  replace(
    holder,
    h("h1", {}, "Choose a new password"),
    h("p", {}, "Changing the password logs out every session of the account."),
    resetForm,
    h("p", { class: "auth-links" }, h("a", { href: "#/reset-request" }, "Send a new reset link")),
  );
  return authCard(holder);
}

// Add the next step to a token error, because the token came from the link and no field shows it.
function explainTokenError(error) {
  if (error instanceof ApiError && error.field === "token") {
    throw new ApiError(error.status, error.code, `${error.message}. Ask for a new reset link.`, error.field);
  }
  throw error;
}

function passwordReset() {
  return [
    h("h1", {}, "Password changed"),
    alertBox("Your password is changed and every session was logged out. Log in with the new password.", "success"),
    h("p", { class: "button-row" }, h("a", { class: "button primary", href: "#/login" }, "Log in")),
  ];
}
