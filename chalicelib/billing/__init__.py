"""Hourly billing: VM-hours, image storage, bandwidth pools and the credit life-cycle."""
