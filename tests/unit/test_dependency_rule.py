"""The dependency rule: services stand on `shared` and never on each other or on the tooling; `shared` imports no
service and no tooling. The tooling (CLI, demo, launcher, embedded Kafka, catalogue) stands on both."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.settings import SERVICES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules_under(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _imports_of(folder: str, forbidden: set[str]) -> dict[str, list[str]]:
    """Each module under `folder` that imports a package in `forbidden`, with those imports."""
    offending = {str(path.relative_to(ROOT)): sorted(name for name in _imported(path)
                                                    if name.split(".")[0] in forbidden)
                 for path in _modules_under(folder)}
    return {path: names for path, names in offending.items() if names}


def test_shared_imports_no_service_and_no_tooling():
    assert _imports_of("shared", {"services", "tooling", "bench", "tests"}) == {}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_tooling(service):
    assert _imports_of(f"services/{service}", {"tooling", "bench", "tests"}) == {}


def test_shared_holds_packages_by_concern_and_no_tooling():
    """What the services share, by concern; the operators' and developers' tools live in `tooling/`."""
    modules = {path.stem for path in (ROOT / "shared").glob("*.py")} - {"__init__"}
    packages = {path.name for path in (ROOT / "shared").iterdir() if (path / "__init__.py").exists()}
    assert packages == {"messaging", "storage", "web"}
    assert modules == {"contract", "settings", "observability", "clock", "regions", "runtime", "registry_tokens",
                       "refusals"}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    others = {f"services.{other}" for other in SERVICES if other != service}
    offending = {str(path.relative_to(ROOT)): sorted(name for name in _imported(path)
                                                    if any(name == o or name.startswith(f"{o}.") for o in others))
                 for path in _modules_under(f"services/{service}")}
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_console_meets_the_services_only_through_their_http_apis():
    """A backend-for-frontend: it imports `shared` and itself, never a service's code, the tooling or the tests."""
    offending = {str(path.relative_to(ROOT)): sorted(name for name in _imported(path)
                                                    if name.split(".")[0] in {"tooling", "bench", "tests"}
                                                    or (name.startswith("services.")
                                                        and not name.startswith("services.console")))
                 for path in _modules_under("services/console")}
    assert {path: names for path, names in offending.items() if names} == {}


def test_a_test_module_takes_shared_helpers_from_tests_support_never_from_another_test_module():
    """What two test modules share lives in tests/support/, where a reader looks for it; a story stays free to
    change without breaking another, and importing one never runs another's module code."""
    offending = {str(path.relative_to(ROOT)): sorted(name for name in _imported(path) if name.startswith("tests.")
                                                    and not name.startswith("tests.support"))
                 for path in _modules_under("tests")}
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_rule_sees_an_import_of_a_service(tmp_path: Path):
    module = tmp_path / "module.py"
    module.write_text("from services.permits import domain\nimport services.reports.api as api\n")
    assert _imported(module) >= {"services.permits", "services.reports.api"}


def test_the_rule_sees_a_late_import_of_the_tooling(tmp_path: Path):
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from tooling.cli import app\n    return app\n")
    assert "tooling.cli" in _imported(module)


def test_test_modules_have_names_of_their_own():
    """pytest imports test modules by their base name (rootdir-relative, no packages): two with one name in
    different folders stop the whole run at collection, which a run of one folder does not show."""
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []
