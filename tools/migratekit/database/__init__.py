"""Everything that talks to PostgreSQL: connecting, applying, tracking, history, drift, verify."""
