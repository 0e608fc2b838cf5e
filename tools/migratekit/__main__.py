"""`python -m migratekit`: the runner of cli.runner."""

import sys

from migratekit.cli.runner import main

sys.exit(main())
