"""SQL lint: PostgreSQL's own parse tree of every migration, checked statement by statement."""
