"""The generated verdict of docs/reproduction.md: settings named against the paper file, the
distance to the paper's row and to the matched controls, and the committed docs up to date."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from conftest import REPO
from s4rec.methods import configure


@pytest.fixture(scope="module")
def verdict():  # a script, not part of the package
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        yield importlib.import_module("verdict")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def run(method: str, seed: int, ndcg20: float, tag: str = "", **sets: object) -> dict:
    """A result file's fields, with the configuration as train_run stores it (JSON lists)."""
    cfg = json.loads(json.dumps(configure(method, REPO / "configs/paper/beauty.yaml").to_dict()))
    for key, value in sets.items():
        section, name = key.split("__")
        cfg[section][name] = value
    cfg["train"]["seed"] = seed
    test = {"HR@5": 0.05, "HR@20": 0.1, "NDCG@5": 0.03, "NDCG@20": ndcg20}
    return {"method": method, "tag": tag, "dataset": "beauty", "loss": "bce", "seed": seed,
            "config": cfg, "test": test, "valid": {"NDCG@20": ndcg20}}  # fmt: skip


def test_settings_beyond_the_paper_file_name_only_what_changed(verdict) -> None:
    assert verdict.beyond_paper_file(run("s4rec", 3, 0.04)) == []
    changed = run("s4rec", 1, 0.04, s4rec__assignment="nearest", augment__operators=["crop"])
    assert verdict.beyond_paper_file(changed) == [
        "s4rec.assignment=nearest",
        "augment.operators=['crop']",
    ]
    assert verdict.beyond_paper_file(run("sasrec", 1, 0.04, train__batch_size=512)) == [
        "train.batch_size=512"
    ]


def test_the_paper_gap_is_the_mean_relative_distance(verdict) -> None:
    rs = [run("s4rec", 1, 0.04), run("s4rec", 2, 0.06)]  # NDCG@20 mean 0.05
    assert verdict.paper_gap(rs, (0.05, 0.1, 0.03, 0.05)) == "+0%"
    assert verdict.paper_gap(rs, (0.1, 0.2, 0.06, 0.1)) == "-50%"


def test_the_control_line_counts_standard_deviations(verdict) -> None:
    ours = [
        run("s4rec", s, v, model__padding="ignored")  # its controls: padding ignored
        for s, v in ((1, 0.050), (2, 0.052), (3, 0.054))
    ]  # sd 0.002
    named = {"sasrec-b512": [run("sasrec", s, v, "-b512") for s, v in ((1, 0.044), (2, 0.046))]}
    line = verdict.control_line("s4rec", ours, named)
    assert "`sasrec-b512` 0.0450 ± 0.0014 (2 seeds): +0.0070, +3.5 sd" in line
    assert "`cl4srec-b512` not run yet" in line
    two = verdict.control_line("s4rec", ours[:2], named)
    assert "+0.0060, no spread yet (fewer than three seeds)" in two
    named["sasrec-b512"].append(run("sasrec", 3, 0.045, "-b512"))  # three seeds of the control
    two = verdict.control_line("s4rec", ours[:2], named)  # still only two of ours
    assert "+0.0060, no spread yet (fewer than three seeds)" in two


def test_each_finding_is_judged_in_seed_standard_deviations(verdict) -> None:
    """Against ``s4rec-base``, in the earlier s4rec's spread (or the run's own, if larger);
    a finding whose run has not finished says so."""
    earlier = [run("s4rec", s, v) for s, v in ((1, 0.050), (2, 0.052), (3, 0.054))]  # sd 0.002
    grid = [run("s4rec", 1, 0.050, "-base"), run("s4rec", 1, 0.0544, "-insert"),
            run("s4rec", 1, 0.049, "-nearest"), run("s4rec", 1, 0.040, "-tau1-1-1"),
            run("s4rec", 1, 0.052, "-tau0.1-1-1")]  # fmt: skip
    grid += [run("s4rec", s, v, "-codepad-raw") for s, v in ((1, 0.050), (2, 0.060), (3, 0.070))]
    rows = {line.split(" | ")[1]: line for line in verdict.switches_table(grid, earlier)[2:]}
    assert rows["`s4rec-insert`"].endswith("| +2.2: above |")
    assert rows["`s4rec-nearest`"].endswith("| -0.5: within the spread |")
    assert (
        "3. tau1, tau2, tau3 apart: the best cell | `s4rec-tau0.1-1-1`"
        in rows["`s4rec-tau0.1-1-1`"]
    )
    assert rows["`s4rec-tau1-1-1`"].endswith("| -5.0: below |")
    assert rows["`s4rec-codepad-raw`"].endswith("| +1.0: within the spread |")  # its sd 0.01
    assert rows["`s4rec-rawkd`"].endswith("| not finished | - | - |")


def test_head_and_tail_gains_are_over_the_matched_sasrec_control(verdict) -> None:
    def grouped(r: dict, head: float, tail: float) -> dict:
        groups = {
            "head": {"HR@5": head, "NDCG@5": head / 2},
            "tail": {"HR@5": tail, "NDCG@5": tail / 2},
        }
        return {**r, "test_by_group": groups}

    ours = [grouped(run("s4rec", s, 0.04, "-codepad-raw", model__padding="iclrec"), h, 0.03)
            for s, h in ((1, 0.05), (2, 0.07))]  # fmt: skip
    control = [grouped(run("sasrec", 1, 0.04, "-codepad-b512"), 0.05, 0.04)]
    lines = verdict.head_tail_table(ours + control, [])
    assert lines[2] == ("| `s4rec-codepad-raw` against `sasrec-codepad-b512` | 2 | 0.0600 (+20.0%) | "
                        "0.0300 (+20.0%) | 0.0300 (-25.0%) | 0.0150 (-25.0%) |")  # fmt: skip
    assert lines[3] == "| `sasrec-codepad-b512` | 1 | 0.0500 | 0.0250 | 0.0400 | 0.0200 |"


def test_the_selected_configuration_is_the_grids_best_at_seed_1(verdict) -> None:
    grid = {
        "s4rec-base": [run("s4rec", 1, 0.051, "-base")],
        "s4rec-a": [run("s4rec", 1, 0.053, "-a"), run("s4rec", 2, 0.049, "-a")],
        "s4rec-b": [run("s4rec", 1, 0.052, "-b"), run("s4rec", 2, 0.060, "-b")],
        "sasrec-codepad-b512": [run("sasrec", 1, 0.060, "-codepad-b512")],  # never selected
    }
    assert verdict.selected(grid) == "s4rec-a"  # seed 1 decides, not a later seed's luck
    codepad = run("s4rec", 1, 0.05, "-codepad", model__padding="iclrec")
    assert verdict.matched_controls([codepad]) == ("sasrec-codepad-b512", "cl4srec-codepad-b512")
    ignored = run("s4rec", 1, 0.05, "-ignored", model__padding="ignored")
    assert verdict.matched_controls([ignored]) == ("sasrec-b512", "cl4srec-b512")


def test_the_default_changes_only_on_a_three_seed_validation_mean(verdict) -> None:
    today = {"s4rec": [run("s4rec", s, v) for s, v in ((1, 0.050), (2, 0.052), (3, 0.054))]}
    grid = {"s4rec-base": [run("s4rec", 1, 0.051, "-base")],
            "s4rec-a": [run("s4rec", 1, 0.056, "-a"), run("s4rec", 2, 0.050, "-a")]}  # fmt: skip
    assert verdict.default_decision(grid, today) == "pending"
    grid["s4rec-a"].append(run("s4rec", 3, 0.053, "-a"))  # mean 0.0530 > 0.0520
    assert verdict.default_decision(grid, today) == "adopt"
    grid["s4rec-a"][2] = run("s4rec", 3, 0.049, "-a")  # mean 0.0517, below
    assert verdict.default_decision(grid, today) == "keep"
    grid["s4rec-base"] = [run("s4rec", 1, 0.060, "-base")]  # today's is the selected one
    assert verdict.default_decision(grid, today) == "keep"


def test_the_s4rec_preset_follows_the_committed_decision(verdict) -> None:
    """Once the selected configuration's seeds are in, the preset must follow the rule: the
    commit that lands the third seed changes (or keeps) the defaults with it."""
    repro, reference = verdict.reproduction_runs()
    grid = verdict.named_runs(repro, "beauty")
    decision = verdict.default_decision(grid, verdict.named_runs(reference, "beauty"))
    name = verdict.selected(grid) if decision == "adopt" else "s4rec-base"
    default = next(r for r in grid[name] if r["seed"] == 1)
    assert verdict.beyond_paper_file(default) == [], f"{decision}: {name} is not the default"


def test_the_nearest_run_to_each_paper_row_is_found_by_mean_distance(verdict) -> None:
    far = run("s4rec", 1, 0.01, "-far")  # NDCG@20 far below every paper row
    near = [run("s4rec", s, 0.05, "-near") for s in (1, 2)]
    other = run("sasrec", 1, 0.0387)
    lines = verdict.closest_lines([far, *near], [other])
    s4rec = next(line for line in lines if line.startswith("| s4rec |"))
    assert s4rec.startswith("| s4rec | `s4rec-near` | 2 |")
    assert verdict.distance(near, verdict.PAPER[("beauty", "s4rec")]) < verdict.distance(
        [far], verdict.PAPER[("beauty", "s4rec")]
    )
    assert next(line for line in lines if line.startswith("| iclrec |")).startswith(
        "| iclrec | not run | - | - |"
    )
    assert "K = 128: not run against 0.0519" in lines[-1]


def test_the_committed_docs_match_the_committed_results() -> None:
    check = subprocess.run([sys.executable, str(REPO / "benchmarks" / "table.py"), "--check"],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stderr
