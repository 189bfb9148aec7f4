"""Customer VMs: creation, state refresh, power actions and deletion with final charges."""
