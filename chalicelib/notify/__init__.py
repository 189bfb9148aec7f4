"""Customer notices by e-mail, rendered from templates in `templates`."""
