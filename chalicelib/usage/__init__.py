"""Read-only views of an account's usage: its runway and its bandwidth pools."""
