"""pyproject.toml declares, with a lower bound, every third-party package lugpi's code imports."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
OWN = {"lugpi_cli", "lugpi_store", "tests"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [Requirement(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs]
    return [Requirement(r) for r in project["dependencies"]], extras


def _fallbacks(tree: ast.AST) -> set[int]:
    """ids of import nodes in the handler of ``try: ... except ImportError:`` (an alternative, not a need)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                caught = ast.unparse(handler.type) if handler.type is not None else ""
                if "ImportError" in caught or "ModuleNotFoundError" in caught:
                    out.update(id(n) for stmt in handler.body for n in ast.walk(stmt))
    return out


def _imported_top_levels() -> dict[str, str]:
    """Top-level module -> one file importing it, over lugpi_cli/ and store/ (absolute imports, not fallbacks)."""
    found: dict[str, str] = {}
    for root in ("lugpi_cli", "store"):
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            skip = _fallbacks(tree)
            for node in ast.walk(tree):
                if id(node) in skip:
                    continue
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.partition(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_runtime_dependency_has_a_lower_bound():
    required, _ = _requirements()
    unbounded = [str(r) for r in required if not any(s.operator in (">=", "==", "~=") for s in r.specifier)]
    assert not unbounded, f"dependencies without a lower bound: {unbounded}"


def test_every_imported_third_party_package_is_declared():
    required, extras = _requirements()
    declared = {_normal(r.name) for r in required + extras}
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for module, where in _imported_top_levels().items():
        if module in OWN or module in sys.stdlib_module_names or module == "__future__":
            continue
        names = {_normal(d) for d in dists.get(module, [module])}
        if not names & declared:
            missing[module] = where
    assert not missing, f"imported but not in pyproject.toml (dependencies or an extra): {missing}"


def test_the_installed_environment_meets_the_bounds():
    """The bounds are real: this environment, where the suite passes, satisfies every one of them."""
    required, _ = _requirements()
    for req in required:
        if req.marker is not None and not req.marker.evaluate():
            continue
        version = importlib.metadata.version(req.name)
        assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} violates {req.specifier}"


def test_the_store_installs_under_a_name_unique_to_lugpi():
    """The folder store/ is the import package lugpi_store (PyPI's unrelated `store` must not be overwritten),
    and every package folder of lugpi_cli is listed, so none is left out of a wheel."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"lugpi_store": "store"}
    listed = set(config["packages"])
    folders = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "lugpi_cli").rglob("__init__.py")}
    assert folders | {"lugpi_store"} == listed
    assert not any(name == "store" or name.startswith("store.") for name in listed)
    import lugpi_store

    assert Path(lugpi_store.__file__).resolve().parent == (REPO / "store").resolve()
