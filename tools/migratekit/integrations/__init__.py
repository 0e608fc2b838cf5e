"""Files that run migrations beyond this machine: a CI workflow, Kubernetes Jobs."""
