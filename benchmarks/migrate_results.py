"""Bring benchmarks/results up to the current layout; safe to run again.

    python benchmarks/migrate_results.py

A file outside runs/ and summaries/ moves there, keeping its path below results/: a JSON
result that names its ``benchmark`` (and a ``.md`` summary) to summaries/, a training run
(and its ``.metrics.jsonl`` log) to runs/. Tracked files move with ``git mv``. Every JSON
result then gets the schema version as its first field; nothing else in it changes. A
copy of a file already migrated is removed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from common import RESULTS, ROOT, RUNS, SUMMARIES, result_path, with_schema
from s4rec.files import write_text_atomic


def destination(path: Path) -> Path:
    """Where a file of the old layout belongs in the new one."""
    rel = path.relative_to(RESULTS)
    if path.suffix == ".json":
        return result_path(str(rel.with_suffix("")), json.loads(path.read_text()))
    return (SUMMARIES if path.suffix == ".md" else RUNS) / rel


def same(old: Path, new: Path) -> bool:
    """Whether ``old`` holds what ``new`` holds, up to the schema field."""
    if old.suffix != ".json":
        return old.read_bytes() == new.read_bytes()
    return with_schema(json.loads(old.read_text())) == json.loads(new.read_text())


def move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "mv", "-k", str(src), str(dst)], cwd=ROOT, check=False)
    if src.exists():  # untracked: git mv -k skipped it
        src.rename(dst)


def main() -> None:
    old = [p for p in sorted(RESULTS.rglob("*"))
           if p.is_file() and not p.is_relative_to(RUNS) and not p.is_relative_to(SUMMARIES)]  # fmt: skip
    moved = 0
    for path in old:
        dst = destination(path)
        if dst.exists() and same(path, dst):  # a copy of a file already migrated
            path.unlink()
            continue
        if dst.exists():
            raise SystemExit(f"{path}: {dst} exists already and differs; resolve by hand")
        move(path, dst)
        moved += 1
        print(f"{path.relative_to(ROOT)} -> {dst.relative_to(ROOT)}")
    for folder in sorted((p for p in RESULTS.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):  # children sort after parents, so go bottom-up
            folder.rmdir()
    stamped = 0
    for path in sorted([*RUNS.rglob("*.json"), *SUMMARIES.rglob("*.json")]):
        text = path.read_text()
        new = json.dumps(with_schema(json.loads(text)), indent=2) + "\n"
        if new != text:
            write_text_atomic(path, new)
            stamped += 1
    print(
        f"{moved} files moved, {len(old) - moved} duplicates removed, {stamped} results given the schema field"
    )


if __name__ == "__main__":
    main()
