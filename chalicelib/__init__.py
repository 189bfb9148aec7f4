"""Lobster: a prepaid, hourly billing panel for virtual machine hosting."""
