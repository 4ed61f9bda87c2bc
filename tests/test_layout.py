"""The architecture holds: connectors → bot → knowledge, and bot/ and knowledge/ never import a platform SDK."""

from __future__ import annotations

import ast

from conftest import REPO

PLATFORM_SDKS = ("slack_bolt", "slack_sdk", "discord")


def _imports(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (REPO / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(REPO))] = names
    return found


def test_core_packages_import_no_platform_sdk():
    for package in ("bot", "knowledge"):
        for path, names in _imports(package).items():
            offending = {n for n in names if n.split(".")[0] in PLATFORM_SDKS}
            assert not offending, f"{path} imports {offending}"


def test_knowledge_does_not_import_bot_or_connectors():
    for path, names in _imports("knowledge").items():
        assert not {n for n in names if n.split(".")[0] in ("bot", "connectors")}, path


def test_bot_does_not_import_connectors():
    for path, names in _imports("bot").items():
        assert not {n for n in names if n.split(".")[0] == "connectors"}, path


def test_the_command_line_is_at_the_edge():
    assert (REPO / "connectors" / "cli.py").is_file()
    assert not list((REPO / "bot").glob("cli.py")), "the command line belongs in connectors/"


def test_every_module_opens_with_a_docstring():
    for package in ("bot", "knowledge", "connectors"):
        for path in (REPO / package).rglob("*.py"):
            assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no module docstring"
