"""Customer support: tickets with message threads, and announcements."""
