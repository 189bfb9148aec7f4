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
    "bandwidth": (
        "You have used {percent}% of your bandwidth in {region}",
        "This month you used {used_gib} GiB of your {pool_gib} GiB pool in region {region}.\n"
        "Traffic above the pool costs {price} {currency} per GiB.\n",
    ),
}


def render(template: str, context: dict[str, object]) -> tuple[str, str]:
    subject, body = TEMPLATES[template]
    return subject.format(**context), body.format(**context)
