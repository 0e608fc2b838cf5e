"""workspace.yaml validation, discovery, ordering and parallel groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_tree
from migratekit.errors import ConfigError
from migratekit.model.discovery import Layout, infer_layout
from migratekit.model.graph import critical_paths
from migratekit.model.workspace import parallel_groups, state_dir
from migratekit.model.workspace_file import find_root, load_workspace


def repo(tmp_path: Path, services: list[str], workspace: str | None = None) -> Path:
    files: dict[str, str | None] = {f"services/{name}/migrations/": None for name in services}
    return write_tree(tmp_path, files if workspace is None else {**files, "workspace.yaml": workspace})


def error(tmp_path: Path, services: list[str], workspace: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_workspace(repo(tmp_path, services, workspace))
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_without_workspace_file_every_discovered_service_uses_defaults(tmp_path: Path) -> None:
    repo(tmp_path, ["billing", "auth"])
    (tmp_path / "services" / "auth" / "package.json").write_text("{}")
    (tmp_path / "services" / "docs").mkdir()  # no migrations: not a service
    (tmp_path / "services" / "auth" / "docs" / "migrations").mkdir(parents=True)  # too deep: not a service
    ws = load_workspace(tmp_path)
    assert list(ws.services) == ["auth", "billing"]
    auth = ws.services["auth"]
    assert (auth.language, auth.database, auth.settings.database_url_env) == ("javascript", "auth", "AUTH_DATABASE_URL")
    settings = auth.settings
    assert (settings.tracking_table, settings.lock_timeout, settings.statement_timeout) == (
        "schema_migrations",
        "5s",
        "5min",
    )
    assert ws.undeclared == ()  # nothing to compare against without a workspace file


def test_example_monorepo_loads_in_dependency_order() -> None:
    ws = load_workspace(Path(__file__).resolve().parents[1])
    assert ws.order() == ["authentication", "battles", "enrichment"]
    assert ws.services["enrichment"].settings.tracking_table == "enrichment.schema_migrations"
    assert ws.services["enrichment"].database == "battles"


def test_undeclared_services_on_disk_are_reported(tmp_path: Path) -> None:
    ws = load_workspace(repo(tmp_path, ["auth", "legacy"], "version: 1\nservices:\n  auth: {}\n"))
    assert ws.undeclared == ("legacy",)
    assert ws.services["legacy"].declared is False


def test_groups_are_parallel_waves_with_ties_broken_by_name(tmp_path: Path) -> None:
    ws = load_workspace(
        repo(
            tmp_path,
            ["a", "b", "c", "d", "e"],
            """
version: 1
services:
  e: {depends_on: [c]}
  d: {depends_on: [a, b]}
  c: {}
  b: {}
  a: {}
""",
        )
    )
    assert ws.groups() == [["a", "b", "c"], ["d", "e"]]
    assert ws.order() == ["a", "b", "c", "d", "e"]
    assert ws.with_dependencies({"d"}) == {"a", "b", "d"}
    assert ws.with_dependents({"c"}) == {"c", "e"}


def test_unknown_top_level_key_names_file_line_and_allowed_keys(tmp_path: Path) -> None:
    message = error(tmp_path, ["a"], "version: 1\nservice:\n  a: {}\n")
    assert message.endswith(
        "workspace.yaml:2: service: unknown key; allowed here: "
        "baseline, defaults, embedded, environments, services, services_dir, version"
    )


def test_unknown_service_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    message = error(tmp_path, ["a", "b"], "version: 1\nservices:\n  a: {}\n  b:\n    depends-on: [a]\n")
    assert "workspace.yaml:5: services.b.depends-on: unknown key" in message


def test_unknown_dependency_names_both_services(tmp_path: Path) -> None:
    message = error(tmp_path, ["a"], "version: 1\nservices:\n  a: {depends_on: [ghost]}\n")
    assert "services.a.depends_on: a depends on unknown service 'ghost'" in message


def test_cycle_names_every_service_in_it(tmp_path: Path) -> None:
    message = error(
        tmp_path,
        ["a", "b", "c"],
        """
version: 1
services:
  a: {depends_on: [c]}
  b: {depends_on: [a]}
  c: {depends_on: [b]}
""",
    )
    assert "depends_on forms a cycle" in message
    assert all(name in message.split("cycle:")[1] for name in "abc")


def test_declared_service_without_a_directory(tmp_path: Path) -> None:
    message = error(tmp_path, [], "version: 1\nservices:\n  payments: {}\n")
    assert "services.payments: declared, but services/payments/migrations does not exist" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 2\n", "version: unsupported version 2"),
        ("version: 1\ndefaults:\n  lock_timeout: soon\n", "defaults.lock_timeout: 'soon' is not valid"),
        ("version: 1\nservices:\n  a: {depends_on: a}\n", "services.a.depends_on: must be a list"),
        ("version: 1\nservices:\n  a: {language: cobol}\n", "services.a.language: unknown language 'cobol'"),
        ("version: 1\nservices:\n  a: {tracking_table: 'x; drop'}\n", "services.a.tracking_table: 'x; drop'"),
        ("version: 1\nservices_dir: ../elsewhere\n", "services_dir: '../elsewhere' points outside"),
        (
            "version: 1\nservices:\n  a: {migrations: /srv/sql}\n",
            "services.a.migrations: '/srv/sql': give the directory",
        ),
        (
            "version: 1\nservices:\n  a: {migrations: ../../../x}\n",
            "services.a.migrations: '../../../x' points outside",
        ),
        ("version: 1\ndefaults:\n  migrations: ''\n", "defaults.migrations: must be a non-empty string"),
        ("version: 1\ndefaults:\n  type_advice: yes please\n", "defaults.type_advice: 'yes please': use true or false"),
        ("version: 1\nservices:\n  a: {type_advice: 1}\n", "services.a.type_advice: 1: use true or false"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("version: 1\nservices: [a\n", "invalid YAML"),
        ("version: 1\nservices:\n  a: !!python/object:os.system {}\n", "invalid YAML"),
    ],
)
def test_bad_values_are_errors_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error(tmp_path, ["a"], text)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    message = error(tmp_path, ["a"], "version: 1\nservices:\n\ta: {}\n")
    assert "workspace.yaml:3: invalid YAML: found character '\\t' that cannot start any token" in message


def test_parallel_groups_on_a_plain_graph() -> None:
    assert parallel_groups({"web": ("api",), "api": ("db",), "db": (), "jobs": ("db",)}) == [
        ["db"],
        ["api", "jobs"],
        ["web"],
    ]


def test_find_root_walks_up_to_the_workspace_file(tmp_path: Path) -> None:
    repo(tmp_path, ["a"], "version: 1\n")
    assert find_root(tmp_path / "services" / "a" / "migrations") == tmp_path.resolve()


def test_critical_paths_weigh_each_service_and_the_chain_that_waits_for_it() -> None:
    graph = {"a": (), "b": ("a",), "c": ("b",), "x": (), "y": ()}
    weights = {"a": 1, "b": 1, "c": 1, "x": 2, "y": 1}
    assert critical_paths(graph, weights) == {"a": 3, "b": 2, "c": 1, "x": 2, "y": 1}


def test_nested_services_are_found_two_levels_down_and_named_by_their_path(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "services/auth/migrations/": None,
            "services/auth/docs/migrations/": None,  # inside a service: not one of its own
            "services/payments/api/migrations/": None,
            "services/payments/worker/migrations/": None,
            "services/web/node_modules/lib/migrations/": None,
            "services/.cache/x/migrations/": None,
            "services/a/b/c/migrations/": None,  # three levels: not found by default
        },
    )
    ws = load_workspace(tmp_path)
    assert list(ws.services) == ["auth", "payments-api", "payments-worker"]
    api = ws.services["payments-api"]
    assert (api.path, api.settings.database_url_env) == (
        tmp_path / "services/payments/api",
        "PAYMENTS_API_DATABASE_URL",
    )


def test_services_dir_takes_glob_patterns(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "services/auth/migrations/": None,
            "apps/shop/api/migrations/": None,
            "workspace.yaml": "version: 1\nservices_dir: ['services/*', 'apps/*/*']\n",
        },
    )
    ws = load_workspace(tmp_path)
    assert {n: s.path.relative_to(tmp_path).as_posix() for n, s in ws.services.items()} == {
        "auth": "services/auth",
        "shop-api": "apps/shop/api",
    }


def test_two_directories_with_one_service_name_are_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"services/payments-api/migrations/": None, "services/payments/api/migrations/": None})
    with pytest.raises(ConfigError, match="services/payments/api and services/payments-api are both named service"):
        load_workspace(tmp_path)


@pytest.mark.parametrize(
    ("directory", "name", "variable"),
    [
        ("services/OrderService", "orderservice", "ORDERSERVICE_DATABASE_URL"),  # a Java monorepo's
        ("services/Ordering.API", "ordering-api", "ORDERING_API_DATABASE_URL"),  # a .NET one's
        ("services/café", "cafe", "CAFE_DATABASE_URL"),
        ("services/payments/API_v2", "payments-api_v2", "PAYMENTS_API_V2_DATABASE_URL"),
        ("services/web  app", "web-app", "WEB_APP_DATABASE_URL"),
        ("services/auth", "auth", "AUTH_DATABASE_URL"),
    ],
)
def test_a_directory_named_with_capitals_dots_or_accents_is_a_service_of_a_name_made_from_it(
    tmp_path: Path, directory: str, name: str, variable: str
) -> None:
    """`services/Billing` was refused, as a workspace.yaml that did not exist, and even init could not adopt the
    monorepo: its name is the directory's, lower-cased, with any other character a `-`."""
    write_tree(tmp_path, {f"{directory}/migrations/001_init.sql": "SELECT 1;\n"})
    ws = load_workspace(tmp_path)
    assert list(ws.services) == [name]
    service = ws.services[name]
    assert service.path == tmp_path / directory and service.settings.database_url_env == variable


def test_a_declared_service_of_a_made_name_is_the_directory_its_name_comes_of(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "services/Ordering.API/migrations/001_init.sql": "SELECT 1;\n",
            "services/Identity/migrations/001_init.sql": "SELECT 1;\n",
            "workspace.yaml": "version: 1\nservices:\n  identity: {}\n  ordering-api: {depends_on: [identity]}\n",
        },
    )
    ws = load_workspace(tmp_path)
    assert ws.order() == ["identity", "ordering-api"]
    assert ws.services["ordering-api"].migrations_dir == tmp_path / "services/Ordering.API/migrations"


def test_a_services_dir_listing_service_directories_names_each_by_its_own(tmp_path: Path) -> None:
    """`services_dir: [services/auth, services/Ordering.API]` (no wildcard) was "services/auth: no service name
    comes of this directory's name": each was named from its path below itself, which is nothing."""
    write_tree(
        tmp_path,
        {
            "services/auth/migrations/001_init.sql": "SELECT 1;\n",
            "services/Ordering.API/migrations/001_init.sql": "SELECT 1;\n",
            "workspace.yaml": "version: 1\nservices_dir: [services/auth, services/Ordering.API]\n",
        },
    )
    ws = load_workspace(tmp_path)
    assert sorted(ws.services) == ["auth", "ordering-api"]
    assert ws.services["ordering-api"].path == tmp_path / "services/Ordering.API"


@pytest.mark.parametrize("typed", ["Ordering.API", "services/Ordering.API", "services/Ordering.API/"])
def test_a_service_asked_for_by_its_directorys_name_is_refused_naming_the_service(tmp_path: Path, typed: str) -> None:
    """`--service Ordering.API` (the directory, as the user sees it) said only "unknown service"."""
    write_tree(tmp_path, {"services/Ordering.API/migrations/001_init.sql": "SELECT 1;\n"})
    with pytest.raises(ConfigError) as raised:
        load_workspace(tmp_path).get(typed)
    assert "services/Ordering.API is the service ordering-api" in str(raised.value)


@pytest.mark.parametrize(
    ("directories", "says"),
    [
        (["services/Billing", "services/billing"], "services/Billing and services/billing are both named service"),
        (["services/2fa"], "services/2fa: no service name comes of this directory's name"),
        (["services/---"], "services/---: no service name comes of this directory's name"),
        ([f"services/{'a' * 64}"], f"services/{'a' * 64}: no service name comes of this directory's name"),
    ],
)
def test_directories_no_name_or_one_name_comes_of_are_refused_naming_them(
    tmp_path: Path, directories: list[str], says: str
) -> None:
    write_tree(tmp_path, {f"{d}/migrations/001_init.sql": "SELECT 1;\n" for d in directories})
    with pytest.raises(ConfigError) as refused:
        load_workspace(tmp_path)
    assert says in str(refused.value) and "workspace.yaml" not in str(refused.value).split(";")[0]


def test_a_declared_name_that_is_no_service_name_names_its_line(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"services/billing/migrations/": None, "workspace.yaml": "version: 1\nservices:\n  Billing: {}\n"},
    )
    with pytest.raises(ConfigError, match=r"workspace.yaml:3: services.Billing: a service name is lower-case"):
        load_workspace(tmp_path)


def test_other_tools_layouts_are_found_and_named_by_the_service(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "services/auth/db/migrations/20240101000000_users.sql": "-- migrate:up\nSELECT 1;\n",  # dbmate's default
            "services/billing/internal/db/migrations/00001_invoices.sql": "-- +goose Up\nSELECT 1;\n",  # Go layout
            "services/billing/go.mod": "module billing\n",
            "services/ledger/internal/migrations/migrations.go": "package migrations\n",  # Go code, no SQL
            "services/web/db/migrations/": None,  # empty, and not the seed's layout: nothing to migrate
            "services/seeded/migrations/": None,  # the seed's layout, empty: a new service
        },
    )
    ws = load_workspace(tmp_path)
    found = {n: (s.settings.migrations, s.language) for n, s in ws.services.items()}
    assert found == {
        "auth": ("db/migrations", "unknown"),  # not a service "auth-db" in services/auth/db
        "billing": ("internal/db/migrations", "go"),
        "seeded": ("migrations", "unknown"),
    }
    assert ws.services["auth"].migrations_dir == tmp_path / "services/auth/db/migrations"


def test_migrations_says_where_a_service_keeps_them(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "services/reports/sql/schema/001_init.up.sql": "SELECT 1;\n",  # no known layout: declared
            "services/auth/db/migrations/": None,
            "services/auth/migrations/": None,  # defaults name db/migrations: this one is not read
            "workspace.yaml": "version: 1\ndefaults:\n  migrations: db/migrations\n"
            "services:\n  reports: {migrations: sql/schema/}\n  auth: {}\n",
        },
    )
    ws = load_workspace(tmp_path)
    assert {n: s.settings.migrations for n, s in ws.services.items()} == {
        "auth": "db/migrations",
        "reports": "sql/schema",
    }


def test_a_declared_migrations_directory_that_does_not_exist_is_named(tmp_path: Path) -> None:
    message = error(tmp_path, ["a"], "version: 1\nservices:\n  a: {migrations: db/migrations}\n")
    assert "services.a: declared, but services/a/db/migrations does not exist" in message
    assert "set migrations: to where its migrations are" in message


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (
            ["internal/services/chat/storage/migrations", "internal/services/users/storage/migrations"],
            Layout("internal/services", "storage/migrations", ("chat", "users")),
        ),
        (
            ["apps/a/db/migrations", "apps/b/db/migrations", "apps/c/db/migrations", "tools/x/migrations"],
            Layout("apps", "db/migrations", ("a", "b", "c"), ("tools/x/migrations",)),
        ),
        (["auth/migrations", "billing/migrations"], Layout(".", "migrations", ("auth", "billing"))),
        (["internal/db/migrations"], None),  # one service: no shape to tell which part is its directory
        ([], None),
    ],
)
def test_init_infers_the_shape_most_migrations_directories_share(paths: list[str], expected: Layout | None) -> None:
    assert infer_layout(paths) == expected


def test_a_migrations_directory_reached_through_a_link_outside_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "migrations"
    outside.mkdir(parents=True)
    (outside / "001_init.sql").write_text("SELECT 1;\n")
    root = write_tree(
        tmp_path / "repo", {"workspace.yaml": "version: 1\nservices:\n  a: {migrations: db/migrations}\n"}
    )
    (root / "services" / "a").mkdir(parents=True)
    (root / "services" / "a" / "db").symlink_to(outside.parent)
    with pytest.raises(ConfigError, match="services.a.migrations: 'db/migrations' points outside the repository"):
        load_workspace(root)


@pytest.mark.parametrize(
    "text",
    [
        "  a: &common {language: sql, tracking_table: a.schema_migrations}\n  b:\n    <<: *common\n"
        "    tracking_table: b.schema_migrations\n",
        "  a: &common {language: sql, tracking_table: a.schema_migrations}\n"
        "  b: {<<: *common, tracking_table: b.schema_migrations}\n",
    ],
    ids=["block", "flow"],
)
def test_a_key_overriding_a_merged_one_is_no_duplicate(tmp_path: Path, text: str) -> None:
    """`<<: *common` then the service's own tracking_table is how YAML merge keys are used, not a key given twice."""
    for name in ("a", "b"):
        (tmp_path / "services" / name / "migrations").mkdir(parents=True)
    (tmp_path / "workspace.yaml").write_text("version: 1\nservices:\n" + text)
    ws = load_workspace(tmp_path)
    assert ws.services["b"].settings.tracking_table == "b.schema_migrations"
    assert ws.services["b"].language == "sql"


def test_a_migrations_directory_that_is_a_link_to_itself_is_refused_naming_it(tmp_path: Path) -> None:
    """Path.resolve raises RuntimeError on a link loop: `invoke audit` and every task was a traceback."""
    write_tree(tmp_path, {"workspace.yaml": "version: 1\nservices:\n  auth: {}\n", "services/auth/": None})
    (tmp_path / "services" / "auth" / "migrations").symlink_to("migrations")
    with pytest.raises(ConfigError) as caught:
        load_workspace(tmp_path)
    assert caught.value.exit_code == 2
    assert "services/auth/migrations is a symbolic link that leads back to itself" in str(caught.value)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("NOPE", "environments.prod: cart and shop would both read $NOPE in prod; put {SERVICE} in the variable"),
        ("PROD_URL_{SERVICE}_X", None),
        ("{SERVICE}_PROD_DATABASE_URL", None),
    ],
)
def test_an_environment_that_gives_two_services_one_variable_is_refused_by_its_line(
    tmp_path: Path, template: str, says: str | None
) -> None:
    """`drift --envs prod` read one database for every service: each one's history judged against another's."""
    workspace = f"version: 1\nenvironments:\n  prod: '{template}'\n"
    if says is None:
        assert load_workspace(repo(tmp_path, ["cart", "shop"], workspace)).environments == {"prod": template}
    else:
        assert f"workspace.yaml:3: {says}" in error(tmp_path, ["cart", "shop"], workspace)


def test_an_environment_without_service_in_it_is_fine_for_a_single_service(tmp_path: Path) -> None:
    ws = load_workspace(repo(tmp_path, ["shop"], "version: 1\nenvironments:\n  prod: PROD_DATABASE_URL\n"))
    assert ws.environment_variable("prod", "shop") == "PROD_DATABASE_URL"


def test_the_state_directory_keeps_itself_out_of_git_and_an_empty_gitignore_left_by_a_full_disk_is_written_again(
    tmp_path: Path,
) -> None:
    """.gitignore was written in place and only when missing: a full disk left it empty, and so it stayed."""
    assert (state_dir(tmp_path) / ".gitignore").read_text() == "*\n"
    (tmp_path / ".migratekit" / ".gitignore").write_text("")
    assert (state_dir(tmp_path) / ".gitignore").read_text() == "*\n"
    (tmp_path / ".migratekit" / ".gitignore").write_text("cache/\n")  # the user's own: kept
    assert (state_dir(tmp_path) / ".gitignore").read_text() == "cache/\n"
    assert sorted(p.name for p in (tmp_path / ".migratekit").iterdir()) == [".gitignore"]
