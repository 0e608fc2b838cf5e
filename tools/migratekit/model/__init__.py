"""The monorepo as data: settings, the workspace and its file, discovery, formats, migrations, identity.

Talks to no database and imports no Invoke or rich: every other layer reads the monorepo through it."""
