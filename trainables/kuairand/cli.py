"""``python -m trainables.mp kuairand --train-days A:B --score-days C:D --out DIR``

Paths and days are flags; everything else (objectives, model, task weighting, training,
requests, splits, unknown ids) is the config file (``--config``, default
``trainables/kuairand/mp.yaml``). The KuaiRand folder is ``--logs`` or the environment
variable ``PARETUNE_KUAIRAND``. Prints a progress bar per epoch and, at the end, the MP
model's AUC per objective on the held-out train rows and on each written split.

Bad input (a flag, a day, the config, the output folder, the logs) is one line
``error: ...`` on stderr and exit code 2, before the logs are read where it can be.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from ..data.schema import DatasetError
from ..mp.config import ConfigError
from .days import parse_days

LOGS_ENV = "PARETUNE_KUAIRAND"
PROG = "python -m trainables.mp kuairand"
# flags of the former command line -> the config key that holds the setting now
MOVED = {"--objectives": "objectives", "--model": "model.family", "--model-params": "model",
         "--weighting": "weighting.kind", "--task-weights": "weighting.weights",
         "--pe-ltr-bounds": "weighting.bounds", "--pe-ltr-every": "weighting.every",
         "--epochs": "train.epochs", "--batch-size": "train.batch_size", "--lr": "train.lr",
         "--weight-decay": "train.weight_decay", "--patience": "train.patience",
         "--unknown-p": "train.unknown_p", "--seed": "train.seed",
         "--request-window-s": "data.request_window_s", "--unknown": "data.unknown",
         "--include-random": "data.include_random", "--max-ids": "data.max_ids",
         "--mp-valid": "splits.mp_valid", "--split": "splits.by"}


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``error: ...``, exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _days(text: str):
    try:
        return parse_days(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description="The MP stage on KuaiRand logs: train a multi-task "
                 "model on the train days, score the score days, write an ME dataset "
                 "(docs/DESIGN.md, 'Data contract'). Settings live in the config file.")
    ap.add_argument("--logs", default=None,
                    help=f"folder with KuaiRand's log_*.csv, user_features*.csv and "
                         f"video_features_basic*.csv (default: ${LOGS_ENV})")
    ap.add_argument("--train-days", required=True, type=_days,
                    help="days the MP model trains on, e.g. 2022-04-25:2022-04-30")
    ap.add_argument("--score-days", required=True, type=_days,
                    help="later days it scores (the ME dataset), e.g. 2022-05-01:2022-05-05")
    ap.add_argument("--valid-days", type=_days, default=None,
                    help="ME valid day(s) with splits.by: day (default: the second-to-last "
                         "score day)")
    ap.add_argument("--test-days", type=_days, default=None,
                    help="ME test day(s) with splits.by: day (default: the last score day)")
    ap.add_argument("--out", required=True, help="output dataset folder")
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    ap.add_argument("--config", default=None,
                    help="MP config (YAML: objectives, data, splits, model, weighting, "
                         "train); default: trainables/kuairand/mp.yaml, which documents "
                         "every key")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def _parse(ap: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    a, rest = ap.parse_known_args(argv)
    for arg in rest:
        key = MOVED.get(arg.split("=", 1)[0])
        if key:
            ap.exit(2, f"error: {arg.split('=', 1)[0]} is a config setting now: set {key} "
                       f"in a config file (copy trainables/kuairand/mp.yaml) and pass "
                       f"--config FILE\n")
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.threads < 0:
        ap.error(f"--threads {a.threads}: must be >= 0 (0: torch's default)")
    a.logs = a.logs or os.environ.get(LOGS_ENV)
    if not a.logs:
        ap.error(f"no KuaiRand folder: pass --logs DIR or set {LOGS_ENV}")
    return a


def print_table(report: dict, file=None) -> None:
    file = file or sys.stdout
    cols = list(report["mp_auc"])
    objs = report["objectives"]
    w = max(len(o) for o in objs + ["objective"])
    print(f"\nMP model AUC per objective ({report['out']}):", file=file)
    print(f"{'objective':<{w}}  " + "  ".join(f"{c:>9}" for c in cols), file=file)
    for o in objs:
        cells = [report["mp_auc"][c].get(o) for c in cols]
        print(f"{o:<{w}}  " + "  ".join(f"{v:9.4f}" if v is not None else f"{'n/a':>9}"
                                        for v in cells), file=file)
    s = report["request_sizes"]
    print(f"requests on the score days: {s['requests']:,} for {s['rows']:,} rows, mean size "
          f"{s['mean']}, single-item {s['single_share']:.1%}, rows in multi-item requests "
          f"{s['rows_in_multi_share']:.1%}, p90 {s['p90']}, max {s['max']}", file=file)
    print(f"rows per split: {report['rows']}; best MP epoch {report['best_epoch']}; "
          f"{report['seconds']} s", file=file)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = _parse(parser(), argv)
    from .config import load_config
    from .pipeline import run
    try:
        cfg = load_config(a.config)
        if a.threads:
            import torch
            torch.set_num_threads(a.threads)
        report = run(a.logs, a.train_days, a.score_days, a.out, cfg,
                     valid_days=a.valid_days, test_days=a.test_days, overwrite=a.overwrite,
                     progress=not a.no_progress, command=f"{PROG} {shlex.join(argv)}")
    except (ConfigError, ValueError, DatasetError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print_table(report)
    return 0
