"""``python -m trainables.mp kuairand --logs DIR --train-days A:B --score-days C:D --out DIR``

Trains the MP model on the train days, scores the score days and writes an ME dataset;
prints a progress bar per epoch and, at the end, the MP model's AUC per objective on the
held-out train rows and on each written split.
"""
from __future__ import annotations

import argparse
import shlex
import sys

import yaml

from ..data import kuairand as kr
from ..data.schema import DatasetError
from .features import MAX_IDS
from .train import WEIGHTINGS, TrainConfig


def _mapping(text: str, what: str) -> dict:
    """``"a=1,b=2"`` or a YAML mapping ``"{a: 1, b: [2, 3]}"`` -> dict."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise argparse.ArgumentTypeError(f"{what}: not a YAML mapping ({e})") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{what}: expected a mapping, got {text!r}")
        return value
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise argparse.ArgumentTypeError(f"{what}: {part!r} is not name=value "
                                             f"(e.g. follow=0.05,like=0.05)")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _days_arg(text: str):
    try:
        return kr.parse_days(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m trainables.mp",
                                 description="Multi-task prediction stage: raw logs -> "
                                             "an ME dataset (docs/DESIGN.md, 'Data contract').")
    sub = ap.add_subparsers(dest="source", required=True, metavar="SOURCE")
    d = TrainConfig()
    k = sub.add_parser("kuairand", help="KuaiRand logs (log_*.csv, user_features*.csv, "
                                        "video_features_basic*.csv)")
    k.add_argument("--logs", required=True, help="folder with the KuaiRand CSV files")
    k.add_argument("--train-days", required=True, type=_days_arg,
                   help="days the MP model trains on, e.g. 2022-04-25:2022-04-30")
    k.add_argument("--score-days", required=True, type=_days_arg,
                   help="later days it scores (the ME dataset), e.g. 2022-05-01:2022-05-05")
    k.add_argument("--out", required=True, help="output dataset folder")
    k.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    k.add_argument("--objectives", default=",".join(kr.OBJECTIVES),
                   help="comma-separated subset (default: all seven)")
    k.add_argument("--model", default="mmoe", help="mmoe or shared_bottom")
    k.add_argument("--model-params", default="", type=lambda s: _mapping(s, "--model-params"),
                   help='e.g. "emb_dim=32,experts=8" or "{expert: [128, 64]}"')
    k.add_argument("--weighting", default="pe_ltr", choices=WEIGHTINGS,
                   help="task weights: pe_ltr (default; KKT weights from the per-task "
                        "gradients of the shared layers) or static")
    k.add_argument("--task-weights", default="",
                   type=lambda s: _mapping(s, "--task-weights"),
                   help="static weights per objective, e.g. click=1,follow=5 (default 1)")
    k.add_argument("--pe-ltr-bounds", default="",
                   type=lambda s: _mapping(s, "--pe-ltr-bounds"),
                   help="PE-LTR lower bounds per objective, e.g. follow=0.05 (sum < 1)")
    k.add_argument("--pe-ltr-every", type=int, default=5,
                   help="recompute PE-LTR weights every N steps (default 5)")
    k.add_argument("--epochs", type=int, default=d.epochs)
    k.add_argument("--batch-size", type=int, default=d.batch_size)
    k.add_argument("--lr", type=float, default=d.lr)
    k.add_argument("--weight-decay", type=float, default=d.weight_decay)
    k.add_argument("--patience", type=int, default=d.patience,
                   help="epochs without a better validation mean AUC before stopping")
    k.add_argument("--unknown-p", type=float, default=d.unknown_p,
                   help="share of codes set to 'unknown' while training")
    k.add_argument("--seed", type=int, default=d.seed)
    k.add_argument("--request-window-s", type=float, default=3600,
                   help="a user's exposures within this many seconds (same day) form one "
                        "request (default 3600)")
    k.add_argument("--mp-valid", default="last_day", choices=("last_day", "random"),
                   help="MP early-stopping rows: the last train day, or 10%% of requests")
    k.add_argument("--split", default="day", choices=("day", "user"),
                   help="ME splits of the score days: by day (default) or by user 80/10/10")
    k.add_argument("--valid-days", type=_days_arg, default=None,
                   help="ME valid day(s) (default: the second-to-last score day)")
    k.add_argument("--test-days", type=_days_arg, default=None,
                   help="ME test day(s) (default: the last score day)")
    k.add_argument("--unknown", default="error", choices=("error", "drop", "keep"),
                   help="exposures whose user/video is missing from the feature files")
    k.add_argument("--include-random", action="store_true",
                   help="also read log_random_* (randomly exposed videos)")
    k.add_argument("--max-ids", type=int, default=MAX_IDS,
                   help="id columns with more distinct values are hashed into this many "
                        "buckets")
    k.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    k.add_argument("--no-progress", action="store_true")
    return ap


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
    ap = parser()
    a = ap.parse_args(argv)
    from .kuairand import run
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    if a.weighting == "static":
        wp = {"weights": a.task_weights} if a.task_weights else {}
    else:
        wp = {"bounds": a.pe_ltr_bounds or None, "every": a.pe_ltr_every}
    if a.weighting == "static" and a.pe_ltr_bounds:
        ap.error("--pe-ltr-bounds needs --weighting pe_ltr")
    if a.weighting == "pe_ltr" and a.task_weights:
        ap.error("--task-weights needs --weighting static")
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                      weight_decay=a.weight_decay, patience=a.patience,
                      unknown_p=a.unknown_p, seed=a.seed)
    try:
        report = run(a.logs, a.train_days, a.score_days, a.out,
                     objectives=[o.strip() for o in a.objectives.split(",") if o.strip()],
                     model=a.model, model_params_=a.model_params, weighting=a.weighting,
                     weighting_params=wp, train_cfg=cfg, request_window_s=a.request_window_s,
                     mp_valid=a.mp_valid, split=a.split, valid_days=a.valid_days,
                     test_days=a.test_days, on_unknown=a.unknown,
                     include_random=a.include_random, max_ids=a.max_ids,
                     overwrite=a.overwrite, progress=not a.no_progress,
                     command="python -m trainables.mp " + shlex.join(
                         sys.argv[1:] if argv is None else list(argv)))
    except (ValueError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
