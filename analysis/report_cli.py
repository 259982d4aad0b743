"""``python -m analysis report``: the command line of the fidelity report (analysis.report)."""
from __future__ import annotations

import argparse
import shlex
import sys


def _list(text: str) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for part in _list(text):
        a, sep, b = part.partition(":")
        if not sep or not a or not b:
            raise argparse.ArgumentTypeError(f"--pairs: {part!r} is not A:B (e.g. click:like)")
        out.append((a, b))
    return out


def _weights(text: str) -> list[float]:
    try:
        w = [float(s) for s in _list(text)]
    except ValueError:
        w = []
    if not w or not all(0 < x < 1 for x in w):
        raise argparse.ArgumentTypeError(f"--weights: {text!r}: give weights strictly "
                                         f"between 0 and 1, e.g. 0.1,0.5,0.9")
    return w


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds: {text!r} is not a comma-separated list "
                                         f"of integers (e.g. 0,1,2)") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds: give at least one seed")
    return seeds


def add_report_parser(sub) -> None:
    from trainables.kuairand.days import parse_days
    from .report.context import TRAINING

    def days(text):
        try:
            return parse_days(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    r = sub.add_parser("report", help="fidelity report: HarmonRank's tables re-measured "
                                      "on real logs (Markdown + PNGs)")
    r.add_argument("experiment", help="folder for the report, its runs and figures")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="an ME dataset folder with train/valid/test splits")
    src.add_argument("--logs", help="KuaiRand CSV folder: the MP stage makes the ME dataset "
                                    "first (into EXPERIMENT/me_dataset)")
    r.add_argument("--train-days", type=days, help="with --logs: the MP model's days")
    r.add_argument("--score-days", type=days, help="with --logs: the ME dataset's days")
    r.add_argument("--objectives", type=_list, help="subset, comma-separated (default: all)")
    r.add_argument("--seeds", type=_seeds, default=[0, 1, 2], help="default 0,1,2")
    r.add_argument("--studies", type=_list, help="subset of losses,label_skew,frontier,"
                                                 "attention,families (default: all but "
                                                 "families)")
    r.add_argument("--losses", type=_list, help="losses to compare (default: all six)")
    r.add_argument("--skew-losses", type=_list, help="default bce,pairwise_logistic,rank_auc")
    r.add_argument("--skew-objective", help="default: the rarest objective on train")
    r.add_argument("--pairs", type=_pairs, help="frontier pairs, e.g. click:like,like:follow "
                                                "(default: the 3 least correlated)")
    r.add_argument("--weights", type=_weights, help="frontier: the first objective's loss "
                                                    "weights (default 0.1,0.3,0.5,0.7,0.9)")
    r.add_argument("--attention-objective", help="whose A_r row to read (default: the "
                                                 "rarest with >= 100 train positives)")
    o = TRAINING["optim"]
    r.add_argument("--epochs", type=int, default=o["epochs"])
    r.add_argument("--lr", type=float, default=o["lr"])
    r.add_argument("--batch-size", type=int, default=o["batch_size"])
    r.add_argument("--threads", type=int, default=TRAINING["run"]["threads"],
                   help="torch threads per run and for the MP stage (default 1; runs are "
                        "small, and more threads than free cores spin-wait each other down)")
    r.add_argument("--epoch", choices=["own", "final", "sum"], default="own",
                   help="which epoch is a run's point, chosen on validation: own (default): "
                        "best for the run's own loss weights or preference; final: the last; "
                        "sum: the best unweighted AUC sum")
    r.add_argument("--docs", help="also copy report.md, report.json and the PNGs here "
                                  "(e.g. docs/fidelity)")


def cmd_report(a) -> int:
    from trainables.data import DatasetError
    from .report import build, publish
    from .report.data import mp_dataset
    if a.logs and not (a.train_days and a.score_days):
        print("error: --logs needs --train-days and --score-days", file=sys.stderr)
        return 2
    if a.data and (a.train_days or a.score_days):
        print("error: --train-days/--score-days go with --logs, not --data", file=sys.stderr)
        return 2
    options = {k: getattr(a, k) for k in ("losses", "skew_losses", "skew_objective", "pairs",
                                          "weights", "attention_objective") if getattr(a, k)}
    training = {"optim": {"epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size},
                "run": {"threads": a.threads}}
    command = "python -m analysis " + shlex.join(sys.argv[1:])
    try:
        data = a.data or mp_dataset(a.experiment, a.logs, a.train_days, a.score_days,
                                    threads=a.threads)
        path = build(a.experiment, data, objectives=a.objectives, seeds=a.seeds,
                     studies=a.studies, options=options, training=training, command=command,
                     rule=a.epoch)
    except (ValueError, DatasetError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.docs:
        print(f"[report] copied to {publish(a.experiment, a.docs)}")
    print(f"[report] {path}")
    return 0
