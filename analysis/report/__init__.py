"""The fidelity report: HarmonRank's claims re-measured on real logs (issue 5).

    python -m analysis report EXPERIMENT --logs /path/to/KuaiRand-Pure/data \\
        --train-days 2022-04-25:2022-04-30 --score-days 2022-05-01:2022-05-05 --seeds 0,1,2
    python -m analysis report EXPERIMENT --data ME_DATASET        # an ME dataset you have

Writes ``EXPERIMENT/report.md`` with its PNGs beside it, ``runs.jsonl`` (every run's
numbers; a killed report resumes from it) and ``report.json``. Studies (``STUDIES``):

- ``losses``     Tables 1-2: bce, label_aggregation, pairwise losses, aucm, rank_auc
- ``label_skew`` Table 7: the rarest objective's train positives cut 10x and 100x
- ``frontier``   Fig. 3: HarmonRank vs MBCE trade-off curves for pairs of objectives
- ``attention``  sec. 5.7.2: learned A_r vs the labels' Spearman correlations
- ``families``   fusion, MLP, HarmonRank and conditioned HarmonRank at equal member-epochs
  (not run unless named in ``studies``: it trains 3 families)

Every run trains with the one training loop and records every epoch's validation and test
AUCs; its point is the epoch the report's rule (``--epoch``, default ``own``:
``analysis.epochs``) picks on validation (``runs.py``). Every verdict states its effect
with its SE, the seed spread and the test set's own noise (a bootstrap over the test rows)
combined, and says "agrees"/"disagrees" only beyond 2 SE (``verdicts.py``).
"""
from __future__ import annotations

import importlib
import json
import platform
import shutil
import sys
import time
from pathlib import Path

from .context import Context
from .data import positives
from .runs import RunStore, TestSets, run_all, view

# name -> "module"; each module has plan(ctx) and render(ctx, pairs)
STUDIES: dict[str, str] = {
    "losses": "analysis.report.studies.losses",
    "label_skew": "analysis.report.studies.skew",
    "frontier": "analysis.report.studies.frontier",
    "attention": "analysis.report.studies.attention",
    "families": "analysis.report.studies.families",
}
DEFAULT_STUDIES = ("losses", "label_skew", "frontier", "attention")   # families: on request


def study(name: str):
    """The study module registered as ``name``; ValueError listing the names."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; studies: {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name])


def build(out, data, *, objectives=None, seeds=(0, 1, 2), studies=None, options=None,
          training=None, command: str = "", log=print, rule: str = "own") -> Path:
    """Run the studies (those not already in ``out/runs.jsonl``) and write the report;
    ``rule``: which epoch is a run's point (``analysis.epochs``)."""
    from analysis.epochs import check_rule
    from trainables.data.schema import load_dataset
    check_rule(rule)
    t0 = time.time()
    out = Path(out)
    modules = {n: study(n) for n in (studies or DEFAULT_STUDIES)}
    ds = load_dataset(data, objectives, splits=["train"])    # validates data + objectives
    for split in ("valid", "test"):
        if split not in ds.meta.get("splits", {}):
            raise ValueError(f"{data}: the report needs a {split!r} split; splits: "
                             f"{', '.join(ds.meta.get('splits', {}))}")
    ctx = Context(out=out, data=Path(data).resolve(), objectives=list(ds.objectives),
                  seeds=list(seeds), options=dict(options or {}), rule=rule)
    for section, values in (training or {}).items():
        ctx.training.setdefault(section, {}).update(values)
    ctx.counts = positives(ctx.data, ctx.objectives)
    ctx.rho = ds.label_spearman("train")
    tests = TestSets()
    _inputs(ctx, tests)
    out.mkdir(parents=True, exist_ok=True)
    ctx.mp = _mp_stage(out, ctx.data)
    plans = {n: m.plan(ctx) for n, m in modules.items()}
    total = len({r.key for p in plans.values() for r in p})
    log(f"[report] {total} runs planned ({', '.join(f'{n} {len(p)}' for n, p in plans.items())}; shared runs "
        f"count once)"
        f" on {ctx.data}")
    store = RunStore(out)
    run_all([r for p in plans.values() for r in p], store, tests, log, out / "scores", rule)
    log(f"[report] verdicts: bootstrap over the test rows ({ctx.noise.B} resamples)")
    sections = [m.render(ctx, [(r, view(store.get(r), rule)) for r in plans[n]])
                for n, m in modules.items()]
    trained = sum(store.records[k].get("seconds", 0) for k in
                  {r.key for p in plans.values() for r in p})
    path = _write(ctx, ds.meta, sections, command, time.time() - t0, trained)
    log(f"[report] wrote {path}")
    return path


def _inputs(ctx: Context, tests: TestSets) -> None:
    """The input scores (the upstream model's score per objective) as baselines: their
    AUCs on every objective's test labels with the test rows' bootstrap (``ctx.noise``),
    each objective's own input score's test AUC (``ctx.input_auc``) and the input scores'
    validation AUCs (``ctx.valid_inputs``)."""
    from analysis.baselines import input_aucs
    from analysis.label_counts import split_file
    from .bootstrap import TestNoise
    t = tests.get(ctx.data, ctx.objectives)
    scores = t.scores.cpu().numpy()
    ctx.noise = TestNoise(t.labels.cpu().numpy(), ctx.objectives, ctx.out / "scores",
                          {f"score_{o}": scores[:, k] for k, o in enumerate(ctx.objectives)})
    ctx.input_auc = {o: ctx.noise.inputs[f"score_{o}"][o] for o in ctx.objectives}
    names, B, _ = input_aucs(split_file(ctx.data, "valid"), ctx.objectives)
    ctx.valid_inputs = {n: dict(zip(ctx.objectives, row.tolist())) for n, row in zip(names, B)}


def _mp_stage(out: Path, data: Path) -> dict:
    """What ``data.mp_dataset`` recorded of the MP stage that made ``data`` (its time and
    threads), or {} when the dataset was given."""
    from .data import MP_STAGE_FILE
    f = Path(out) / MP_STAGE_FILE
    if Path(data).resolve().parent != Path(out).resolve() or not f.is_file():
        return {}
    return json.loads(f.read_text())


def publish(out, docs) -> Path:
    """Copy the report (Markdown, PNGs, report.json) into ``docs`` (replacing it)."""
    out, docs = Path(out), Path(docs)
    if docs.exists():
        shutil.rmtree(docs)
    docs.mkdir(parents=True)
    for f in [out / "report.md", out / "report.json", *sorted(out.glob("*.png"))]:
        shutil.copyfile(f, docs / f.name)
    return docs / "report.md"


def _data_table(ctx: Context, meta: dict) -> list[str]:
    mp = (meta.get("source") or {}).get("mp_auc") or {}
    mp_test = mp.get("test", {}) if isinstance(mp, dict) else {}
    lines = ["| objective | " + " | ".join(f"{s} positives" for s in ctx.counts)
             + " | test AUC of its own input score ± SE (test rows) |",
             "|" + "---|" * (len(ctx.counts) + 2)]
    for o in ctx.objectives:
        cells = [f"{p:,} of {n:,} ({p / max(1, n):.2%})"
                 for p, n in (ctx.counts[s][o] for s in ctx.counts)]
        se = ctx.noise.input_se(f"score_{o}", o)
        lines.append(f"| {o} | " + " | ".join(cells) + f" | {ctx.input_auc[o]:.4f} ± {se:.4f} |")
    if mp_test:
        lines += ["", "The input scores are the MP stage's predictions (`source.mp_auc` in the "
                  "dataset's meta.yaml has its AUCs per split)."]
    return lines


def _timing(ctx: Context, seconds: float, trained: float) -> str:
    """How long the report took, the MP stage included."""
    t = ctx.training
    mp = ctx.mp
    if mp:
        where = "in this invocation" if mp.get("this_invocation") else \
            "in an earlier invocation (its output was reused)"
        mp_text = (f"The MP stage took {mp['seconds'] / 60:.1f} min at {mp.get('threads')} "
                   f"torch thread(s) {where}; ")
    else:
        mp_text = "The ME dataset was given (no MP stage); "
    total = trained + (mp.get("seconds", 0.0) if mp else 0.0)
    if mp.get("this_invocation"):           # build() starts its clock after the MP stage
        seconds += mp["seconds"]
    return (f"Machine: {platform.machine()}, torch threads per run: {t['run'].get('threads')}, "
            f"torch {_torch_version()}, Python {sys.version.split()[0]}. {mp_text}the runs "
            f"trained for {trained / 60:.1f} min in all; MP stage and runs together "
            f"{total / 60:.1f} min. This invocation took {seconds / 60:.1f} min (runs already "
            "in runs.jsonl are not retrained).")


def _shown(path: Path) -> str:
    """A path as the report prints it: relative to the working folder when inside it (the
    report is often published into the repository's docs)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _torch_version() -> str:
    import torch
    return torch.__version__


def _rule_text(rule: str) -> str:
    return {"own": "each run's point is the epoch best for its own loss weights (sum_k w_k "
                   "AUC_k on validation; a conditioned model's grid point: its preference)",
            "final": "each run's point is its last epoch",
            "sum": "each run's point is the epoch with the best validation AUC sum"}[rule]


def _write(ctx: Context, meta: dict, sections, command: str, seconds: float,
           trained: float) -> Path:
    findings = [f for s in sections for f in s.findings]
    t = ctx.training
    md = [
        "# Fidelity report: HarmonRank's claims on real logs", "",
        f"Generated by `{command}`" if command else "", "",
        f"Dataset: `{_shown(ctx.data)}`" + (f", made by `{meta['created_by']}`"
                                   if meta.get("created_by") else "") + ".  ",
        f"Objectives: {', '.join(ctx.objectives)}. Seeds: {', '.join(map(str, ctx.seeds))}. "
        f"Training: {t['model']['family']} network, Adam lr {t['optim']['lr']}, batch "
        f"{t['optim']['batch_size']}, {t['optim']['epochs']} epochs; {_rule_text(ctx.rule)} "
        f"(`--epoch {ctx.rule}`), scored on test.  ",
        _timing(ctx, seconds, trained), "",
        "## Where the real data agrees and disagrees with the paper", "",
        "Each verdict states its effect ± SE: the seed spread (std / sqrt(seeds)) and the "
        f"test set's own noise (a bootstrap over the {ctx.noise.labels.shape[0]:,} test rows, "
        f"{ctx.noise.B} resamples, every run resampled alike) combined. \"agrees\" or "
        "\"disagrees\" only when the effect is beyond 2 SE, else \"inconclusive\". "
        "report.json has every number behind every verdict.", "",
        *[f"- {f['text']}" for f in findings], "",
        "## Data", "", *_data_table(ctx, meta), "",
        "An AUC measured on a few dozen positives is noisy whatever the seed: see the "
        "standard errors under the loss table.", ""]
    for s in sections:
        md += [f"## {s.title}", "", s.markdown, ""]
    path = ctx.out / "report.md"
    path.write_text("\n".join(md))
    (ctx.out / "report.json").write_text(json.dumps(_json_safe(
        {"command": command, "data": _shown(ctx.data), "objectives": ctx.objectives,
         "seeds": ctx.seeds, "training": ctx.training, "options": ctx.options,
         "epoch_rule": ctx.rule, "counts": ctx.counts,
         "noise": {"z": 2.0, "bootstrap_resamples": ctx.noise.B,
                   "test_rows": int(ctx.noise.labels.shape[0]),
                   "se": "sqrt(se_seeds^2 + se_test^2); se_seeds = std over seeds / "
                         "sqrt(seeds); se_test = std over bootstrap resamples of the test rows"},
         "input_scores": {"test": ctx.noise.inputs, "valid": ctx.valid_inputs},
         "mp_stage": ctx.mp, "trained_seconds": trained, "seconds": seconds,
         "findings": findings,
         "sections": {s.title: {"findings": s.findings, "data": s.data} for s in sections}}),
        indent=1, default=str))
    return path


def _json_safe(x):
    """Numbers JSON can hold (non-finite: None), tuples as lists, numpy as Python."""
    import math
    import numpy as np
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _json_safe(x.tolist())
    return x
