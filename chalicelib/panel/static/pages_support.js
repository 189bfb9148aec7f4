// Support tickets: open one, list them, read a thread, reply and close. Subjects and messages
// are user text, so they only ever go into text nodes (messages keep their line breaks).

import { h, replace } from "./dom.js";
import { get, id, post } from "./api.js";
import { actionButton, alertBox, badge, dateTime, form, loaded, pageHeader, pagedTable, section } from "./ui.js";

const TICKETS_PER_PAGE = 15;
const MAX_SUBJECT_LENGTH = 256;
const STATUS_KINDS = { open: "warn", answered: "ok", closed: "" };
const STATUS_TEXT = { open: "Waiting for support", answered: "Support replied", closed: "Closed" };

function statusBadge(status) {
  return badge(STATUS_TEXT[status] || status, STATUS_KINDS[status] || "");
}

// ---- list -------------------------------------------------------------------------------

export function ticketList() {
  const list = h("div", {});
  const reload = () => replace(list, loaded(() => get("v1/tickets"), (answer) => ticketTable(answer.tickets)));
  reload();

  const openForm = form({
    fields: [
      { name: "subject", label: "Subject", maxLength: MAX_SUBJECT_LENGTH, hint: "One line saying what the ticket is about." },
      { name: "message", label: "Message", type: "textarea", rows: 6, hint: "Name the VM or payment the question is about, if any." },
    ],
    submitLabel: "Open ticket",
    busyLabel: "Opening…",
    onSubmit: async (values, node) => {
      const ticket = await post("v1/tickets", { subject: values.subject, message: values.message });
      node.reset();
      reload();
      return `Ticket opened: ${ticket.subject}`;
    },
  });
  return h(
    "div",
    {},
    pageHeader("Support"),
    section("Your tickets", list),
    section("Open a ticket", openForm),
  );
}

function ticketTable(tickets) {
  const columns = [
    { label: "Subject", value: (ticket) => h("a", { href: `#/tickets/${encodeURIComponent(ticket.id)}` }, ticket.subject) },
    { label: "Status", value: (ticket) => statusBadge(ticket.status) },
    { label: "Messages", value: (ticket) => String(ticket.message_count) },
    { label: "Last activity", value: (ticket) => dateTime(ticket.updated_at) },
  ];
  return pagedTable(columns, tickets, { size: TICKETS_PER_PAGE, empty: "No tickets yet. Open one below if you need help." });
}

// ---- detail -----------------------------------------------------------------------------

export async function ticketDetail({ params }) {
  const holder = h("div", { class: "ticket-page" });
  const draw = (ticket) => replace(holder, ticketView(ticket, draw));
  draw(await get(`v1/tickets/${id(params.ticketId)}`));
  return holder;
}

function ticketView(ticket, draw) {
  const closeButton =
    ticket.status === "closed"
      ? null
      : actionButton("Close ticket", async () => draw(await closeTicket(ticket)), {
          busyLabel: "Closing…",
          confirmText: "Close this ticket? You cannot reply to it afterwards, but you can open a new one.",
          success: "Ticket closed.",
        });
  return [
    h("p", { class: "breadcrumb" }, h("a", { href: "#/tickets" }, "All tickets")),
    pageHeader(ticket.subject, closeButton),
    h(
      "dl",
      { class: "facts ticket-facts" },
      h("dt", {}, "Status"),
      h("dd", {}, statusBadge(ticket.status)),
      h("dt", {}, "Opened"),
      h("dd", {}, dateTime(ticket.created_at)),
      ticket.closed_at ? [h("dt", {}, "Closed"), h("dd", {}, dateTime(ticket.closed_at))] : null,
    ),
    section("Messages", thread(ticket.messages)),
    ticket.status === "closed"
      ? alertBox("This ticket is closed. Open a new ticket if you need more help.", "info")
      : section("Reply", replyForm(ticket, draw)),
  ];
}

async function closeTicket(ticket) {
  await post(`v1/tickets/${id(ticket.id)}/close`);
  return get(`v1/tickets/${id(ticket.id)}`);
}

function thread(messages) {
  return h(
    "ol",
    { class: "messages ticket-thread" },
    messages.map((message) => {
      const staff = message.author === "staff";
      return h(
        "li",
        { class: staff ? "message message-staff" : "message" },
        h("p", { class: "message-meta" }, staff ? badge("Lobster support", "ok") : h("strong", {}, "You"), ` · ${dateTime(message.created_at)}`),
        h("div", { class: "message-body" }, message.message),
      );
    }),
  );
}

function replyForm(ticket, draw) {
  return form({
    fields: [{ name: "message", label: "Your reply", type: "textarea", rows: 5 }],
    submitLabel: "Send reply",
    busyLabel: "Sending…",
    onSubmit: async (values) => {
      draw(await post(`v1/tickets/${id(ticket.id)}/messages`, { message: values.message }));
      return "Reply sent.";
    },
  });
}
