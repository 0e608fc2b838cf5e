"""Kubernetes Jobs that migrate each service from its own image, in dependency order.

`render` writes one Job per service: the service's image, its own runner (the TypeScript
`dist/migrate.js`, the Python scaffold's `python -m <pkg>.migrate`, else `python -m migratekit
migrate`), the database URL from a Secret (never a literal), `backoffLimit: 0`,
`activeDeadlineSeconds` from the statement timeout, and the dependency wave as a label.
`run` (migrate-all --on kubernetes) applies them wave by wave with the official client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migratekit.model.settings import duration_seconds
from migratekit.model.workspace import Service, Workspace

PART_OF = "migratekit"
WAVE_LABEL = "migratekit.dev/wave"
SERVICE_LABEL = "migratekit.dev/service"
MARGIN_SECONDS = 120  # pulling the image and connecting, beyond the longest statement


def seconds(duration: str) -> int:
    """A PostgreSQL duration (5s, 5min, 500ms; bare numbers are milliseconds) in whole seconds."""
    return max(1, int(duration_seconds(duration)))


def command(service: Service) -> list[str]:
    """How the service's own image migrates and exits."""
    package = service.name.replace("-", "_")
    if service.language in ("typescript", "javascript"):
        return ["node", "dist/migrate.js"]
    if (service.path / "src" / package / "migrate.py").is_file():
        return ["python", "-m", f"{package}.migrate"]
    return ["python", "-m", "migratekit", "migrate", "--dir", "/app/migrations"]


def job(service: Service, wave: int, image: str, namespace: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": PART_OF, SERVICE_LABEL: service.name, WAVE_LABEL: str(wave)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"migrate-{service.name}", "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,  # a failed migration is reported, never retried blindly
            "activeDeadlineSeconds": seconds(service.settings.statement_timeout) + MARGIN_SECONDS,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "migrate",
                            "image": image,
                            "command": command(service),
                            "env": [
                                {
                                    "name": "DATABASE_URL",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": f"{service.name}-db-credentials", "key": "url"}
                                    },
                                },
                                {"name": "MIGRATIONS_DIR", "value": "/app/migrations"},
                            ],
                        }
                    ],
                },
            },
        },
    }


def render(workspace: Workspace, image_template: str, namespace: str) -> list[dict[str, Any]]:
    """Every service's Job, wave by wave (the waves of workspace.groups())."""
    return [
        job(workspace.services[name], number, image_template.format(service=name), namespace)
        for number, wave in enumerate(workspace.groups(), start=1)
        for name in wave
    ]


def waves_of(jobs: list[dict[str, Any]]) -> list[list[str]]:
    """The services of each wave label, in order: what tests compare with workspace.groups()."""
    waves: dict[int, list[str]] = {}
    for manifest in jobs:
        labels = manifest["metadata"]["labels"]
        waves.setdefault(int(labels[WAVE_LABEL]), []).append(labels[SERVICE_LABEL])
    return [waves[n] for n in sorted(waves)]


def write(jobs: list[dict[str, Any]], directory: Path) -> list[Path]:
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in jobs:
        path = directory / f"{manifest['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    return written


def cluster_unavailable_reason() -> str | None:
    """None when a Kubernetes cluster answers (kubeconfig or in-cluster), else why not (for skips and messages)."""
    try:
        from kubernetes import client, config  # type: ignore[import-untyped]
    except ImportError:
        return "the kubernetes package is not installed (pip install 'migratekit[kubernetes]')"
    try:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as exc:  # the client raises many unrelated types when no cluster answers
        return f"no Kubernetes cluster answers ({type(exc).__name__})"
    return None


def run(
    workspace: Workspace,
    selected: list[str],
    image_template: str,
    namespace: str,
    progress: Any = None,
    poll: float = 2.0,
) -> list[Any]:
    """Apply the Jobs wave by wave, wait on each Job's conditions, stream its log, skip dependents of a failure.

    Returns one Result per service, as a local run does, so the summary and exit codes are the same.
    """
    import time

    from kubernetes import client  # type: ignore[import-untyped]

    from migratekit import interrupts
    from migratekit.database.results import Failure, Outcome, Result
    from migratekit.errors import MigratekitError

    reason = cluster_unavailable_reason()
    if reason is not None:
        raise MigratekitError(f"--on kubernetes: {reason}")
    batch, core = client.BatchV1Api(), client.CoreV1Api()
    results: dict[str, Result] = {}
    for number, wave in enumerate(workspace.groups(set(selected)), start=1):
        started: dict[str, float] = {}
        for name in wave:
            failed = [d for d in workspace.services[name].depends_on if d in results and not results[d].ok]
            if failed or interrupts.requested():
                why = f"depends on {', '.join(failed)}, which did not finish" if failed else interrupts.describe()
                results[name] = Result(name, Outcome.SKIPPED, notes=(f"skipped: {why}",))
                continue
            manifest = job(workspace.services[name], number, image_template.format(service=name), namespace)
            _replace_job(batch, manifest, namespace)
            started[name] = time.monotonic()
        seen: dict[str, int] = {}
        while started:
            for name in list(started):
                for line in _new_log_lines(core, namespace, f"migrate-{name}", seen):
                    if progress:
                        progress(name, line[:80])
                state = _job_state(batch.read_namespaced_job_status(f"migrate-{name}", namespace))
                if state is None and not interrupts.requested():
                    continue
                elapsed = int((time.monotonic() - started.pop(name)) * 1000)
                if progress:
                    progress(name, None)
                if state == "Complete":
                    results[name] = Result(name, Outcome.APPLIED, elapsed_ms=elapsed, notes=("the Job completed",))
                else:
                    if state is None:  # interrupted: stop the Job; its runner's transaction rolls back
                        batch.delete_namespaced_job(f"migrate-{name}", namespace, propagation_policy="Foreground")
                    outcome = Outcome.INTERRUPTED if state is None else Outcome.FAILED
                    message = f"Job migrate-{name} {'was stopped' if state is None else 'failed'}; see its log"
                    results[name] = Result(name, outcome, elapsed_ms=elapsed, failure=Failure(message))
            time.sleep(poll)
    rank = {name: i for i, name in enumerate(workspace.order())}
    return sorted(results.values(), key=lambda r: rank[r.service])


def _replace_job(batch: Any, manifest: dict[str, Any], namespace: str) -> None:
    """Create the Job, after removing a finished one of the same name (Job specs cannot be updated)."""
    import time

    from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]

    name = manifest["metadata"]["name"]
    try:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        while True:
            batch.read_namespaced_job(name, namespace)
            time.sleep(1)
    except ApiException as exc:
        if exc.status != 404:
            raise
    batch.create_namespaced_job(namespace, manifest)


def _job_state(status: Any) -> str | None:
    for condition in status.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _new_log_lines(core: Any, namespace: str, job_name: str, seen: dict[str, int]) -> list[str]:
    """Log lines of the Job's pod not shown yet (the whole log is read; migration logs are short)."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
    lines: list[str] = []
    for pod in pods:
        try:
            text = core.read_namespaced_pod_log(pod.metadata.name, namespace)
        except Exception:  # the container has not started yet
            continue
        all_lines = text.splitlines()
        lines += all_lines[seen.get(pod.metadata.name, 0) :]
        seen[pod.metadata.name] = len(all_lines)
    return lines
