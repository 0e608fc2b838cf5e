"""Reading migrations' SQL for the statement rules: pglast's tree and what a rule is told."""
