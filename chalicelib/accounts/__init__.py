"""Customer accounts: sign-up, log-in and sessions."""
