import sys

from migratekit.cli import main

sys.exit(main())
