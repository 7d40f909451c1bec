"""The README and docs/ describe what exists: every command and option of ``s4rec`` is in
docs/cli.md, every cited repository path is a file or folder, every function of the
equation-to-code map is defined, the README stays short and CI runs its commands, and the
result files the docs are generated from follow their layout."""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

import pytest

from conftest import REPO
from s4rec import cli
from s4rec.config import Config, dotted

DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
PATH = re.compile(r"(?<![\w/.-])((?:src|tests|benchmarks|configs|docs|\.ci)/[\w./+=@-]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PLACEHOLDER = re.compile(r"[A-Z]{2,}|\*|\.\.\.")
MODULES = {"augment": "s4rec.data.augment", "dataset": "s4rec.data.dataset"}


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand of ``s4rec`` by name, and the top-level parser as ``""``."""
    top = cli.parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {"": top, **subs.choices}


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")]


def section(text: str, command: str) -> str:
    """The part of docs/cli.md under the heading ``## `s4rec COMMAND` ``, up to the next one."""
    head = f"## `s4rec {command}`"
    assert head in text, f"docs/cli.md has no section {head!r}"
    return text.split(head, 1)[1].split("\n## ", 1)[0]


def mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_and_option_is_in_the_cli_page(command: str) -> None:
    text = (REPO / "docs" / "cli.md").read_text()
    where = text.split("\n## ", 1)[0] if command == "" else section(text, command)
    every = set(options(commands()[""])) if command else set()  # global: documented on top
    missing = [o for o in options(commands()[command]) if o not in every and not mentions(where, o)]
    assert missing == [], f"s4rec {command}: options not in docs/cli.md: {missing}"


def cited_paths(page: Path) -> list[tuple[str, Path]]:
    """Repository paths a page names: relative markdown links, and anything that starts
    with a top-level folder of the repository (placeholders such as DATASET skipped)."""
    text = page.read_text()
    found = []
    for target in LINK.findall(text):
        if "://" not in target and not target.startswith(("#", "mailto:")):
            found.append((target, page.parent / target.split("#", 1)[0]))
    for target in PATH.findall(text):
        target = target.rstrip(".,:;")
        if not PLACEHOLDER.search(target):
            found.append((target, REPO / target))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_cited_path_exists(page: Path) -> None:
    missing = [name for name, path in cited_paths(page) if not path.exists()]
    assert missing == [], f"{page.name} cites paths that do not exist: {missing}"


def test_the_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


def defined(name: str) -> bool:
    """Whether ``module.attr...`` names an object under s4rec (``augment`` and ``dataset``
    are modules of s4rec.data)."""
    module, *attrs = name.split(".")
    try:
        obj = importlib.import_module(MODULES.get(module, f"s4rec.{module}"))
    except ModuleNotFoundError:
        return False
    for attr in attrs:
        if not hasattr(obj, attr):
            return False
        obj = getattr(obj, attr)
    return True


def test_every_name_in_the_equation_map_is_defined() -> None:
    """Each backticked name in the map is a function or class of the code, or a setting."""
    text = (REPO / "docs" / "method.md").read_text()
    part = text.split("## Equation to code", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in part.splitlines() if line.startswith("|"))
    names = re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)(?:=\w+)?`", table)
    settings = set(dotted(Config().to_dict()))
    assert len(names) > 20
    unknown = [n for n in names if n not in settings and not defined(n)]
    assert unknown == [], f"docs/method.md cites names that do not exist: {unknown}"


def test_ci_runs_the_readme_install_and_test_commands() -> None:
    """.ci/run runs exactly the install and test lines of the README's three commands."""
    readme = (REPO / "README.md").read_text().split("## Three commands", 1)[1]
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = {line.split("#")[-1].strip(): line.split("  #")[0].strip()
                for line in block.splitlines()}  # fmt: skip
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands["install"] in ci and commands["test"] in ci


def test_result_files_carry_a_schema_and_sit_in_their_folder() -> None:
    """Training runs under benchmarks/results/runs/, summaries (which name their
    ``benchmark``) under summaries/, each with a schema version; nothing loose beside them."""
    results = REPO / "benchmarks" / "results"
    assert sorted(p.name for p in results.iterdir()) == ["runs", "summaries"]
    for folder, is_summary in (("runs", False), ("summaries", True)):
        for path in (results / folder).rglob("*.json"):
            r = json.loads(path.read_text())
            assert isinstance(r.get("schema"), int), f"{path}: no schema version"
            assert ("benchmark" in r) == is_summary, f"{path}: in the wrong folder"
