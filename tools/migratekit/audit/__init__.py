"""Service audit: the SQL lint plus the wiring that makes migrations run (runner, image, startup)."""
