# The migratekit image: `python -m migratekit migrate` for every format migratekit reads, with the same
# tracking rules as `invoke migrate-all`, and no Invoke or workspace needed at run time. Any service, whatever
# its language, runs its migrations with it as a Job or an init container:
#   docker build -t migratekit .
#   docker run --rm -v "$PWD/services/orders/migrations:/migrations:ro" -e DATABASE_URL migratekit \
#       migrate --dir /migrations --tracking-table migratekit.schema_migrations
# or FROM it, with `COPY services/orders/migrations /migrations`. PYTHON_IMAGE picks the Python base image.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
COPY pyproject.toml README.md /src/migratekit/
COPY tools /src/migratekit/tools
RUN pip install --no-cache-dir --disable-pip-version-check /src/migratekit && rm -rf /src/migratekit \
    && python -m migratekit --version
# Runs as a numeric non-root user on a read-only root filesystem (Pod Security "restricted"): nothing is
# written at run time, not even bytecode (pip compiled it above).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 65532:65532
WORKDIR /migrations
ENTRYPOINT ["python", "-m", "migratekit"]
CMD ["--help"]
