"""Operator actions behind the admin API: accounts, VMs, the catalog and listings.

Each change is stored together with its audit event in one DynamoDB transaction where the
change is one or a few items, so an action is recorded exactly once.
"""
