import sys

from migratekit.cli.runner import main

sys.exit(main())
