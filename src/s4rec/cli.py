"""The ``s4rec`` command: parse arguments, build the configuration, call the library."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shlex
import socket
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import torch

from .checkpoint import load_state, model_from_state
from .config import Config
from .data.catalog import catalog_table
from .data.dataset import LeaveOneOut
from .data.preprocess import DUPLICATE_POLICIES, OUT_FORMATS, prepare
from .data.readers import FORMATS
from .evaluate import evaluate, protocol
from .files import read_json
from .inference import Recommender, read_histories, write_predictions
from .methods import METHODS, configure
from .model import SequenceEncoder
from .pipeline import trained_data
from .runtime import DEVICES, rank
from .train import Trainer

METRIC_COLUMNS = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR")


def build_config(args: argparse.Namespace) -> Config:
    """``methods.configure``: defaults < method preset < --config file < its ``methods.<method>``
    section < command-line flags < --set overrides. ``--resume`` without ``--method`` or
    ``--config`` starts from the run's own ``config.yaml`` instead of the first three."""
    flags = {
        "data.dataset": args.dataset,
        "data.data_dir": args.data_dir,
        "train.epochs": args.epochs,
        "train.seed": args.seed,
        "train.threads": args.threads,
        "train.device": args.device,
    }
    sets = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    if args.no_progress:
        sets.append("train.progress=false")
    if args.final:
        sets += ["train.final=true", *epochs_from(args)]
    elif args.epochs_from is not None:
        raise ValueError("--epochs-from goes with --final (the epochs of a final model)")
    if args.resume and args.method is None and args.config is None:
        return Config.load(Path(args.out) / "config.yaml").override(sets + list(args.set))
    return configure(args.method, args.config, sets + list(args.set))


def epochs_from(args: argparse.Namespace) -> list[str]:
    """A final model's epoch count: ``--epochs``, ``--set train.epochs=N``, or the best epoch
    of a finished run (``--epochs-from RUN_DIR``)."""
    given = args.epochs is not None or any(s.startswith("train.epochs=") for s in args.set)
    if args.epochs_from is None:
        if not given:
            raise ValueError("--final trains for a fixed number of epochs: give --epochs-from"
                             " RUN_DIR (its best epoch) or --epochs N")  # fmt: skip
        return []
    if given:
        raise ValueError("give --epochs or --epochs-from, not both")
    path = Path(args.epochs_from) / "results.json"
    if not path.is_file():
        raise ValueError(f"{path}: not found; --epochs-from needs a finished run directory")
    results = read_json(path)
    best = results.get("best_epoch") if isinstance(results, dict) else None
    if not isinstance(best, int) or best < 1:
        raise ValueError(f"{path}: no best_epoch to take (a final model's, or an untrained run's)")
    return [f"train.epochs={best}"]


def metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """Rows of metrics (``HR@k``, ``NDCG@k``, ``MRR``) as an aligned text table, 4 decimals."""
    rows = {name: row for name, row in rows.items() if row}
    columns = [c for c in METRIC_COLUMNS if any(c in row for row in rows.values())]
    width = max(len(name) for name in rows) if rows else 0
    lines = [" " * width + "".join(f"{c:>9}" for c in columns)]
    for name, row in rows.items():
        lines.append(
            f"{name:<{width}}" + "".join(f"{row.get(c, float('nan')):>9.4f}" for c in columns)
        )
    return "\n".join(lines)


def by_group(split: str, groups: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``{"test": all, "test head": head, ...}`` of one split's metrics by user group."""
    return {f"{split} {g}" if g != "all" else split: m for g, m in groups.items()}


def cmd_train(args: argparse.Namespace) -> None:
    if args.resume and args.overwrite:
        raise ValueError(
            "--resume continues the run in --out and --overwrite replaces it: give one"
        )
    if args.resume and not (Path(args.out) / "last.pt").is_file():
        raise ValueError(f"{args.out}: nothing to resume (no last.pt); train without --resume")
    cfg = build_config(args)
    results = Trainer(cfg, args.out).fit(resume=args.resume, overwrite=args.overwrite)
    if rank() > 0:  # under torchrun, rank 0 speaks for the run
        return
    shown = ("method", "dataset", "final", "epochs", "valid", "test", "test_by_group")
    if args.json:
        print(json.dumps({k: results[k] for k in shown if k in results}, indent=2))
    elif results.get("final"):
        print(f"trained a final model for {results['epochs']} epochs: {args.out}/best.pt")
    else:
        groups = {"all": results["test"], **results["test_by_group"]}
        print(metrics_table({"valid": results["valid"], **by_group("test", groups)}))
        print(f"best epoch {results['best_epoch']} of {results['epochs']}; run in {args.out}")


def _trained(args: argparse.Namespace) -> tuple[Config, SequenceEncoder, LeaveOneOut]:
    """A checkpoint's configuration (with ``--set``), its model, and the data it was
    trained on (refused when it is not that data)."""
    state = load_state(args.checkpoint)
    cfg, model, _ = model_from_state(state, args.checkpoint, args.set, args.device)
    return cfg, model, trained_data(state, cfg, args.checkpoint, args.data_dir)


def cmd_evaluate(args: argparse.Namespace) -> None:
    cfg, model, data = _trained(args)
    out = {split: evaluate(model, data, split, cfg) for split in ("valid", "test")}
    if args.json:
        print(json.dumps({"eval_protocol": protocol(cfg, data), **out}, indent=2))
        return
    rows = {name: m for split, groups in out.items() for name, m in by_group(split, groups).items()}
    print(metrics_table(rows))
    repeats = "misses" if cfg.eval.exclude_history else "ranked"
    print(f"ranking all {data.n_items:,} items for {data.n_users:,} users; repeated targets"
          f" are {repeats} (eval.exclude_history={str(cfg.eval.exclude_history).lower()})")  # fmt: skip


def cmd_predict(args: argparse.Namespace) -> None:
    cfg, model, data = _trained(args)
    write_predictions(model, data, args.split, args.k, args.out, cfg, args.format)
    print(
        f"wrote top-{args.k} {args.split} predictions for {data.n_users} users to {args.out}",
        file=sys.stderr,
    )  # stdout may be the predictions themselves (--out /dev/stdout)


def cmd_recommend(args: argparse.Namespace) -> None:
    rec = Recommender.load(args.checkpoint, args.device, args.set)
    exclude = rec.cfg.eval.exclude_history  # the run's protocol, or --set eval.*
    if args.histories is None:  # one history on the command line: item<TAB>score lines
        history = args.history.split()
        for item, score in rec.recommend([history], args.k, exclude, args.on_unknown)[0]:
            print(f"{item}\t{score:.4f}")
        return
    histories = read_histories(args.histories)
    for number, history in enumerate(histories, 1):  # an unknown id: the line that has it
        try:
            rec.ids(history, args.on_unknown)
        except ValueError as err:
            raise ValueError(f"{args.histories}, line {number}: {err}") from None
    for top in rec.recommend(histories, args.k, exclude, args.on_unknown):
        print(json.dumps({"items": [{"item": i, "score": round(v, 6)} for i, v in top]}))


def missing_extra(command: str, err: ImportError) -> SystemExit:
    """The exit for a command whose optional dependencies (the extra of its name) are absent."""
    return SystemExit(
        f"s4rec {command} needs the {command} extra: pip install -e '.[{command}]' ({err})"
    )


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from .serve import load_app
    except ImportError as err:
        raise missing_extra("serve", err) from None
    app = load_app(args.checkpoint, args.device, args.onnx)
    check_port(args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


def check_port(host: str, port: int) -> None:
    """A clear error, before the server starts, when ``host:port`` cannot be listened on."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        why = os.strerror(err.errno) if err.errno else str(err)
        raise ValueError(f"cannot listen on {host}:{port} ({why}); choose another --port") from None


def cmd_export(args: argparse.Namespace) -> None:
    try:
        from .export import export_onnx
    except ImportError as err:
        raise missing_extra("export", err) from None
    parity = export_onnx(args.checkpoint, args.out, args.k)
    print(f"wrote {args.out}: top-{parity['k']} of {parity['items']} items; parity with the model"
          f" checked (largest score difference {parity['max_score_difference']:.1e})")  # fmt: skip


def cmd_analyze(args: argparse.Namespace) -> None:
    from .report import analyze_runs, md_table, tables

    analyses = analyze_runs(
        args.runs, args.tsne_points, not args.force, args.data_dir, args.set, args.device
    )
    for title, (header, rows) in tables(analyses).items():
        print(f"{title}\n\n{md_table(header, rows)}\n")
    print("wrote " + ", ".join(f"{a['run']}/analysis.json" for a in analyses))


def cmd_report(args: argparse.Namespace) -> None:
    from .report import analyze_runs, write_report

    analyses = analyze_runs(
        args.runs, args.tsne_points, not args.force, args.data_dir, args.set, args.device
    )
    path = write_report(analyses, args.out, tuple(args.sweep), tuple(args.baseline))
    print(f"wrote {path} and {path.with_suffix('.md')}")


def cmd_datasets(args: argparse.Namespace) -> None:
    print(
        f"{'name':<10} {'users':>8} {'items':>8} {'interactions':>13} {'avg len':>8}"
        f" {'repeats':>8}  location"
    )
    for r in catalog_table(args.data_dir):
        if r["users"] is None:
            stats = f"{'-':>8} {'-':>8} {'-':>13} {'-':>8} {'-':>8}"
        else:
            rep = r["repeats"]
            share = rep["either"] / rep["users"] if rep["users"] else 0.0
            stats = (
                f"{r['users']:>8,} {r['items']:>8,} {r['interactions']:>13,}"
                f" {r['avg_length']:>8.2f} {share:>8.2%}"
            )
        where = r["path"] or r["note"]
        if r["path"] is None and r["searched"]:
            where += f"; looked in {', '.join(r['searched'])}"
        elif r["path"] and r["note"]:
            where += f" ({r['note']})"
        print(f"{r['name']:<10} {stats}  {where}")


def cmd_methods(args: argparse.Namespace) -> None:
    for m in METHODS.values():
        print(m.name)
        print(textwrap.fill(m.description, 88, initial_indent="  ", subsequent_indent="  "))
        if m.settings:
            sets = " ".join(f"{k}={v}" for k, v in m.settings.items())
            print(textwrap.fill(sets, 88, initial_indent="  sets: ", subsequent_indent="    "))


def cmd_prepare(args: argparse.Namespace) -> None:
    columns = {"user_col": args.user_col, "item_col": args.item_col, "time_col": args.time_col}
    kwargs = {k: v for k, v in columns.items() if v is not None}
    seqs = prepare(
        args.input,
        args.out,
        fmt=args.format,
        k_core=args.k_core,
        duplicates=args.duplicates,
        out_format=args.out_format,
        **kwargs,
    )
    print(
        f"wrote {args.out}: {seqs.n_users:,} users, {seqs.n_items:,} items, {len(seqs.values):,} interactions"
    )
    print(f"held-out repeats: {seqs.held_out_repeats_text()}")


def at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"{value} is not {bound}")
        return value

    return parse


def existing_dir(text: str) -> str:
    """An argparse type: a directory that exists (a mistyped --data-dir fails here, rather
    than the search going on silently without it)."""
    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return text


def add_use_flags(p: argparse.ArgumentParser) -> None:
    """What a trained model is used under: ``--set eval.KEY=VALUE`` (the protocol; runtime
    settings such as train.eval_batch_users too), ``--device`` (any device, whichever one it
    was trained on) and ``--threads``."""
    p.add_argument(
        "--set", action="append", default=[], metavar="eval.KEY=VALUE",
        help="change the run's protocol, e.g. eval.exclude_history=false (repeats rankable),"
        " or a runtime setting, e.g. train.eval_batch_users=256",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help=f"{DEVICES} (default auto)")
    p.add_argument("--threads", type=at_least(1), help="torch threads (default: torch's choice)")


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the metrics as JSON, not a table")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="s4rec",
        description="Sequential recommendation with S^4Rec and SASRec: prepare data, train, "
        "evaluate with full ranking, predict and recommend.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write RUN_DIR")
    t.add_argument(
        "--dataset", help="catalog name (s4rec datasets) or path to a sequence-text file"
    )
    t.add_argument(
        "--data-dir", type=existing_dir, help="directory with dataset files (also: $S4REC_DATA)"
    )
    t.add_argument(
        "--method", choices=sorted(METHODS), help="named method (s4rec methods; default sasrec)"
    )
    t.add_argument("--epochs", type=int, help="maximum number of epochs")
    t.add_argument("--seed", type=int)
    t.add_argument("--threads", type=at_least(1), help="torch threads (default: torch's choice)")
    t.add_argument("--device", help=f"{DEVICES} (train.device, default auto)")
    t.add_argument("--config", help="YAML or TOML configuration file")
    t.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.lr=0.001"
    )
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in RUN_DIR (otherwise an error)")  # fmt: skip
    add_json_flag(t)
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--final", action="store_true",
                   help="train on every interaction (nothing held out) for a fixed number of"
                        " epochs: a model for deployment")  # fmt: skip
    t.add_argument("--epochs-from", metavar="RUN_DIR",
                   help="with --final: train for that finished run's best epoch")  # fmt: skip
    t.set_defaults(func=cmd_train)

    for name, func, text in [("evaluate", cmd_evaluate, "metrics of a checkpoint"),
                             ("predict", cmd_predict, "top-k items of every user to a TSV or JSON-lines file")]:  # fmt: skip
        e = sub.add_parser(name, help=text)
        e.add_argument("checkpoint")
        e.add_argument("--data-dir", type=existing_dir)
        add_use_flags(e)
        e.set_defaults(func=func)
        if name == "evaluate":
            add_json_flag(e)
        if name == "predict":
            e.add_argument("--split", choices=["valid", "test", "next"], default="test",
                           help="before the validation or test item, or next: after the whole"
                                " sequence (what to show tomorrow)")  # fmt: skip
            e.add_argument("--k", "-k", type=at_least(1), default=20)
            e.add_argument("--format", choices=["tsv", "jsonl"], default="tsv",
                           help="user<TAB>items, or JSON lines {user, items, scores} (any ids)")  # fmt: skip
            e.add_argument("--out", required=True)

    r = sub.add_parser(
        "recommend",
        help="recommend items after histories of raw item ids",
        description="Top-k items after each history (raw ids, oldest first). An empty history"
        " gets the items ranked by training popularity.",
    )
    r.add_argument("checkpoint")
    given = r.add_mutually_exclusive_group(required=True)
    given.add_argument("--history", help='space-separated raw item ids, oldest first: "i1 i2 i3"')
    given.add_argument(
        "--histories",
        metavar="FILE",
        help="one history per line: space-separated ids, or a JSON list of ids per line (ids"
        " with spaces); prints one JSON line {items: [{item, score}]} per history",
    )
    r.add_argument("-k", "--k", type=at_least(1), default=10)
    r.add_argument("--on-unknown", choices=["error", "skip"], default="error",
                   help="an id not in the model's catalogue: an error, or dropped")  # fmt: skip
    add_use_flags(r)
    r.set_defaults(func=cmd_recommend)

    v = sub.add_parser("serve", help="serve a checkpoint over HTTP (pip install -e '.[serve]')")
    v.add_argument("checkpoint")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    v.add_argument("--port", type=at_least(1, 65535), default=8000)
    v.add_argument("--threads", type=at_least(1), help="torch threads (default: torch's)")
    v.add_argument("--device", default="cpu", help=DEVICES)
    v.add_argument("--onnx", action="store_true",
                   help="CHECKPOINT is an s4rec export, ranked by onnxruntime")  # fmt: skip
    v.set_defaults(func=cmd_serve)

    x = sub.add_parser("export", help="a checkpoint as an ONNX graph (pip install -e '.[export]')")
    x.add_argument("checkpoint")
    x.add_argument("--format", choices=["onnx"], default="onnx")
    x.add_argument("--k", "-k", type=at_least(1), default=100,
                   help="items the graph returns per history")  # fmt: skip
    x.add_argument("--out", required=True)
    x.set_defaults(func=cmd_export)

    for name, func, text in [
        ("analyze", cmd_analyze, "per-group metrics, clusters, head rates, t-SNE of finished runs"),
        ("report", cmd_report, "one self-contained HTML page (and Markdown) about finished runs"),
    ]:
        a = sub.add_parser(name, help=text)
        a.add_argument("runs", nargs="+", metavar="RUN_DIR")
        a.add_argument("--data-dir", type=existing_dir)
        a.add_argument(
            "--tsne-points", type=at_least(0), default=1000, help="0 skips the t-SNE map"
        )
        a.add_argument("--force", action="store_true", help="recompute existing analysis.json")
        add_use_flags(a)
        a.set_defaults(func=func)
        if name == "report":
            a.add_argument("--out", required=True, help="directory for report.html, report.md")
            a.add_argument(
                "--sweep",
                action="append",
                default=[],
                metavar="KEY",
                help="plot test metrics against this setting, e.g. s4rec.alpha",
            )
            a.add_argument("--baseline", action="append", default=[], metavar="METHOD",
                           help="variant (run name without -sSEED) or method to compare with;"
                                " repeat for several")  # fmt: skip

    d = sub.add_parser(
        "datasets",
        help="list the dataset catalog and where each file was found",
        description="The dataset catalog. 'repeats': share of users whose validation or test"
        " item repeats one of their earlier items (a miss unless eval.exclude_history=false).",
    )
    d.add_argument("--data-dir", type=existing_dir)
    d.set_defaults(func=cmd_datasets)

    m = sub.add_parser("methods", help="list the named methods and the settings each changes")
    m.set_defaults(func=cmd_methods)

    pr = sub.add_parser(
        "prepare", help="raw interaction log -> sequence text + vocabulary (or binary)"
    )
    pr.add_argument("input")
    pr.add_argument("--out", required=True)
    pr.add_argument("--format", default="auto", choices=[f for f in FORMATS if f != "sequence"])
    pr.add_argument("--duplicates", choices=DUPLICATE_POLICIES, default="drop",
                    help="exact duplicate (user, item, time) rows: drop (logged) or error")  # fmt: skip
    pr.add_argument("--k-core", type=at_least(0), default=5,
                    help="keep users and items with at least K interactions, repeatedly (default 5)")  # fmt: skip
    pr.add_argument("--out-format", choices=OUT_FORMATS, default="text",
                    help="text (sequence text + vocabulary) or binary (a directory of arrays)")  # fmt: skip
    pr.add_argument("--user-col")
    pr.add_argument("--item-col")
    pr.add_argument("--time-col")
    pr.set_defaults(func=cmd_prepare)
    for command in sub.choices.values():  # -v before or after the command
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="debug logging")  # fmt: skip
    return p


def os_error(err: OSError) -> str:
    """``FILE: what`` for an error of the operating system, in one line."""
    what = {
        errno.EEXIST: "exists and is not a directory",
        errno.ENOSPC: "no space left on the device",
    }.get(err.errno or 0, err.strerror or str(err))
    return f"{err.filename}: {what}" if err.filename is not None else what


def interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    """What to do after Ctrl-C: for ``train``, the command that continues the run."""
    if args.command != "train":
        return "interrupted"
    if not (Path(args.out) / "last.pt").is_file():
        return "interrupted before an epoch finished; start again with --overwrite"
    again = [a for a in argv if a != "--overwrite"] + ([] if args.resume else ["--resume"])
    return f"interrupted; continue with: s4rec {shlex.join(again)}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if getattr(args, "threads", None) and args.command != "train":  # train: train.threads
        torch.set_num_threads(args.threads)
        if hasattr(args, "set"):  # over the run's own train.threads when its data is loaded
            args.set.append(f"train.threads={args.threads}")
    try:
        args.func(args)
    except KeyboardInterrupt:
        if rank() == 0:
            print(f"s4rec {args.command}: {interrupted(args, argv)}", file=sys.stderr)
        sys.exit(130)
    except OSError as err:  # not found (DatasetNotFound), permission, disk full, ...
        fail(args, os_error(err))
    except ValueError as err:  # bad settings or data (DataError), files that do not parse
        fail(args, str(err))


def fail(args: argparse.Namespace, message: str) -> None:
    print(f"s4rec {args.command}: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
