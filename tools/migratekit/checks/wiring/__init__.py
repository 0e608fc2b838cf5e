"""How a service is wired: its runner, start-up, Dockerfile and deploy manifests, read with parsers."""
