"""Notice templates: a subject and a plain-text body per notice, filled with str.format."""

from __future__ import annotations

TEMPLATES: dict[str, tuple[str, str]] = {
    "low_credit": (
        "Your Lobster credit is running low",
        "Your balance is {balance} {currency} and your services cost {hourly_cost} {currency} per hour.\n"
        "Add credit to keep them running. Services are suspended when the balance falls below zero.\n",
    ),
    "suspended": (
        "Your Lobster services are suspended",
        "Your balance is {balance} {currency}. Your VMs are stopped and suspended.\n"
        "Add credit to lift the suspension; without it, they will be deleted.\n",
    ),
    "terminated": (
        "Your Lobster services were deleted",
        "Your balance stayed at {balance} {currency}, so your VMs and images were deleted after their final charges.\n",
    ),
    "unsuspended": (
        "Your Lobster VM {vm_name} is no longer suspended",
        "Thank you for adding credit. VM {vm_name} can be started again.\n",
    ),
    "payment_received": (
        "Payment received: {amount} {currency}",
        "We received {amount} {currency} through {gateway} (payment {payment_id}) and added it to your credit.\n"
        "Your balance is now {balance} {currency}.\n",
    ),
    "bandwidth": (
        "You have used {percent}% of your bandwidth in {region}",
        "This month you used {used_gib} GiB of your {pool_gib} GiB pool in region {region}.\n"
        "Traffic above the pool costs {price} {currency} per GiB.\n",
    ),
    "verify_email": (
        "Confirm your Lobster e-mail address",
        "Welcome to Lobster. Confirm this address to start creating VMs.\n\n"
        "Open this link in the Lobster panel:\n\n    {api_url}/#/verify?token={token}\n\n"
        "Or use the API. Your verification token:\n\n    {token}\n\n"
        "Send it to {api_url}/v1/auth/verify\n"
        "as the JSON body {{\"token\": \"...\"}}.\n"
        "The token works once and expires in {hours} hours.\n"
        "If you did not sign up for Lobster, ignore this message.\n",
    ),
    "password_reset": (
        "Reset your Lobster password",
        "Someone asked to reset the password of the Lobster account\n"
        "that uses this address.\n\n"
        "Choose a new password in the Lobster panel:\n\n    {api_url}/#/reset?token={token}\n\n"
        "Or use the API. Your reset token:\n\n    {token}\n\n"
        "Send it to {api_url}/v1/auth/reset as the JSON body\n"
        "{{\"token\": \"...\", \"new_password\": \"...\",\n"
        " \"new_password_confirmation\": \"...\"}}.\n"
        "The token works once and expires in {minutes} minutes.\n"
        "A reset logs out every session. If you did not ask for this,\n"
        "ignore this message: your password stays the same.\n",
    ),
    "password_changed": (
        "Your Lobster password was changed",
        "The password of your Lobster account was just changed,\n"
        "and its other sessions were logged out. If you did not do this,\n"
        "reset your password at once and contact support.\n",
    ),
    "ticket_reply": (
        "Re: {subject} [{ticket_id}]",
        "Lobster support replied to your ticket {ticket_id}:\n\n{message}\n\n"
        "Reply through the API at /v1/tickets/{ticket_id}/messages.\n",
    ),
}


def render(template: str, context: dict[str, object]) -> tuple[str, str]:
    subject, body = TEMPLATES[template]
    return subject.format(**context), body.format(**context)
