// The panel's shell: the session, the navigation and a hash router that loads each page's
// module on first use. Every page renders from the JSON API alone.

import { h, replace } from "./dom.js";
import { ApiError, UNAUTHENTICATED_EVENT, get, post } from "./api.js";
import { alertBox, errorText, notify } from "./ui.js";

// [pattern, module, export, who may open it]. ":name" segments become params.
const ROUTES = [
  ["/login", "pages_auth.js", "logIn", "public"],
  ["/signup", "pages_auth.js", "signUp", "public"],
  ["/verify", "pages_auth.js", "verifyEmail", "any"],
  ["/reset-request", "pages_auth.js", "requestReset", "public"],
  ["/reset", "pages_auth.js", "resetPassword", "public"],
  ["/", "pages_home.js", "dashboard", "customer"],
  ["/vms", "pages_vms.js", "vmList", "customer"],
  ["/vms/new", "pages_vms.js", "vmCreate", "customer"],
  ["/vms/:vmId", "pages_vms.js", "vmDetail", "customer"],
  ["/images", "pages_images.js", "imageList", "customer"],
  ["/ssh-keys", "pages_account.js", "sshKeys", "customer"],
  ["/api-keys", "pages_account.js", "apiKeys", "customer"],
  ["/settings", "pages_account.js", "settings", "customer"],
  ["/billing", "pages_billing.js", "billing", "customer"],
  ["/payments/return", "pages_billing.js", "paymentReturn", "customer"],
  ["/tickets", "pages_support.js", "ticketList", "customer"],
  ["/tickets/:ticketId", "pages_support.js", "ticketDetail", "customer"],
  ["/admin", "pages_admin_users.js", "userList", "admin"],
  ["/admin/users", "pages_admin_users.js", "userList", "admin"],
  ["/admin/users/:accountId", "pages_admin_users.js", "userDetail", "admin"],
  ["/admin/vms", "pages_admin_users.js", "vmList", "admin"],
  ["/admin/vms/:vmId", "pages_admin_users.js", "vmDetail", "admin"],
  ["/admin/payments", "pages_admin_users.js", "paymentList", "admin"],
  ["/admin/audit", "pages_admin_users.js", "auditLog", "admin"],
  ["/admin/plans", "pages_admin_catalog.js", "planList", "admin"],
  ["/admin/regions", "pages_admin_catalog.js", "regionList", "admin"],
  ["/admin/images", "pages_admin_catalog.js", "imageList", "admin"],
  ["/admin/announcements", "pages_admin_catalog.js", "announcementList", "admin"],
  ["/admin/tickets", "pages_admin_catalog.js", "ticketList", "admin"],
  ["/admin/tickets/:ticketId", "pages_admin_catalog.js", "ticketDetail", "admin"],
];

const CUSTOMER_NAV = [
  ["#/", "Dashboard"],
  ["#/vms", "VMs"],
  ["#/images", "Images"],
  ["#/billing", "Billing"],
  ["#/tickets", "Support"],
  ["#/ssh-keys", "SSH keys"],
  ["#/api-keys", "API keys"],
  ["#/settings", "Settings"],
];
const ADMIN_NAV = [
  ["#/admin/users", "Users"],
  ["#/admin/vms", "All VMs"],
  ["#/admin/plans", "Plans"],
  ["#/admin/regions", "Regions"],
  ["#/admin/images", "Catalog images"],
  ["#/admin/payments", "Payments"],
  ["#/admin/tickets", "Tickets"],
  ["#/admin/announcements", "Announcements"],
  ["#/admin/audit", "Audit log"],
];
const PUBLIC_NAV = [
  ["#/login", "Log in"],
  ["#/signup", "Sign up"],
];

// The logged-in account (GET v1/account), or null.
let session = null;
let renderCount = 0;

export function currentSession() {
  return session;
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export async function refreshSession() {
  try {
    session = await get("v1/account");
  } catch (error) {
    if (!(error instanceof ApiError) || (error.status !== 401 && error.status !== 403)) throw error;
    session = null;
  }
  drawNav();
  drawBanner();
  return session;
}

export async function logOut() {
  try {
    const answer = await post("v1/auth/logout");
    // The old session is gone on purpose: the 401 that refreshSession may meet is expected.
    session = null;
    await refreshSession();
    notify(answer && answer.restored === "admin" ? "Back to your admin session." : "You are logged out.");
  } catch (error) {
    notify(errorText(error), "error");
  }
  navigate(session ? "#/admin/users" : "#/login");
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [pathPart, queryPart = ""] = raw.split("?");
  return { path: pathPart.replace(/\/+$/, "") || "/", query: Object.fromEntries(new URLSearchParams(queryPart)) };
}

function match(pathText) {
  const parts = pathText.split("/").filter(Boolean);
  for (const [pattern, module, name, access] of ROUTES) {
    const patternParts = pattern.split("/").filter(Boolean);
    if (patternParts.length !== parts.length) continue;
    const params = {};
    const ok = patternParts.every((part, index) => {
      if (part.startsWith(":")) {
        params[part.slice(1)] = decodeURIComponent(parts[index]);
        return true;
      }
      return part === parts[index];
    });
    if (ok) return { module, name, access, params };
  }
  return null;
}

function navLink([href, label]) {
  const { path } = parseHash();
  const target = href.replace(/^#/, "") || "/";
  const current = path === target || (target !== "/" && path.startsWith(`${target}/`));
  return h("a", { href, "aria-current": current ? "page" : null }, label);
}

function drawNav() {
  const nav = document.getElementById("nav");
  if (!session) {
    replace(nav, h("ul", {}, PUBLIC_NAV.map((item) => h("li", {}, navLink(item)))));
    return;
  }
  const groups = [h("ul", {}, CUSTOMER_NAV.map((item) => h("li", {}, navLink(item))))];
  if (session.role === "admin") {
    groups.push(h("p", { class: "nav-heading" }, "Admin"), h("ul", {}, ADMIN_NAV.map((item) => h("li", {}, navLink(item)))));
  }
  const logout = h("button", { type: "button", class: "link", onclick: logOut }, session.impersonated ? "End impersonation" : "Log out");
  replace(nav, groups, h("div", { class: "nav-account" }, h("span", { class: "nav-email" }, session.email), logout));
}

function drawBanner() {
  const banner = document.getElementById("banner");
  if (session && session.impersonated) {
    replace(banner, `You are viewing the panel as ${session.email}. `, h("button", { type: "button", class: "link", onclick: logOut }, "End impersonation"));
    banner.hidden = false;
    return;
  }
  if (session && !session.email_verified) {
    replace(banner, "Verify your e-mail address to create VMs. ", h("a", { href: "#/verify" }, "Enter the token from the e-mail"));
    banner.hidden = false;
    return;
  }
  banner.hidden = true;
  replace(banner);
}

function redirectFor(access) {
  if (access === "public" && session) return "#/";
  if ((access === "customer" || access === "admin") && !session) return `#/login?next=${encodeURIComponent(location.hash || "#/")}`;
  if (access === "admin" && session.role !== "admin") return "#/";
  return null;
}

async function route() {
  const main = document.getElementById("main");
  const ticket = ++renderCount;
  const { path, query } = parseHash();
  const found = match(path);
  closeMenu();
  drawNav();

  if (!found) {
    replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Go to the dashboard")));
    return;
  }
  const redirect = redirectFor(found.access);
  if (redirect) {
    location.replace(redirect);
    return;
  }

  replace(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const module = await import(`./${found.module}`);
    // The user may have left while the module loaded. The page they left then loads nothing.
    if (ticket !== renderCount) return;
    const page = await module[found.name]({ params: found.params, query, session, navigate, refreshSession });
    if (ticket !== renderCount) return;
    replace(main, page);
    const heading = main.querySelector("h1");
    document.title = heading ? `${heading.textContent} · Lobster` : "Lobster";
    main.focus({ preventScroll: true });
  } catch (error) {
    if (ticket !== renderCount) return;
    if (error instanceof ApiError && error.status === 401) {
      await refreshSession();
      location.replace(`#/login?next=${encodeURIComponent(location.hash)}`);
      return;
    }
    replace(main, h("h1", {}, "This page could not be shown"), alertBox(errorText(error)));
  }
}

// A 401 while logged in means the session ended elsewhere (log-out, password change, expiry).
function sessionEnded() {
  if (!session) return;
  session = null;
  drawNav();
  drawBanner();
  notify("Your session has ended. Log in again to continue.", "error");
  const back = location.hash && !location.hash.startsWith("#/login") ? location.hash : "#/";
  location.replace(`#/login?next=${encodeURIComponent(back)}`);
}

function closeMenu() {
  const toggle = document.getElementById("menu-toggle");
  toggle.setAttribute("aria-expanded", "false");
  document.getElementById("nav").classList.remove("open");
}

function toggleMenu() {
  const toggle = document.getElementById("menu-toggle");
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  document.getElementById("nav").classList.toggle("open", open);
}

async function start() {
  document.getElementById("menu-toggle").addEventListener("click", toggleMenu);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.getElementById("nav").classList.contains("open")) {
      closeMenu();
      document.getElementById("menu-toggle").focus();
    }
  });
  window.addEventListener(UNAUTHENTICATED_EVENT, sessionEnded);
  window.addEventListener("hashchange", route);
  try {
    await refreshSession();
  } catch (error) {
    replace(document.getElementById("main"), alertBox(errorText(error)));
    return;
  }
  route();
}

start();
