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

Every run trains HarmonRank's network with the one training loop, keeps the epoch with
the best validation AUC sum and reports test AUCs (``runs.py``).
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
from .runs import RunStore, TestSets, run_all

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
          training=None, command: str = "", log=print) -> Path:
    """Run the studies (those not already in ``out/runs.jsonl``) and write the report."""
    from trainables.data.schema import load_dataset
    t0 = time.time()
    out = Path(out)
    modules = {n: study(n) for n in (studies or DEFAULT_STUDIES)}
    ds = load_dataset(data, objectives, splits=["train"])    # validates data + objectives
    for split in ("valid", "test"):
        if split not in ds.meta.get("splits", {}):
            raise ValueError(f"{data}: the report needs a {split!r} split; splits: "
                             f"{', '.join(ds.meta.get('splits', {}))}")
    ctx = Context(out=out, data=Path(data).resolve(), objectives=list(ds.objectives),
                  seeds=list(seeds), options=dict(options or {}))
    for section, values in (training or {}).items():
        ctx.training.setdefault(section, {}).update(values)
    ctx.counts = positives(ctx.data, ctx.objectives)
    ctx.rho = ds.label_spearman("train")
    tests = TestSets()
    ctx.input_auc = _input_auc(ctx, tests)
    out.mkdir(parents=True, exist_ok=True)
    plans = {n: m.plan(ctx) for n, m in modules.items()}
    total = len({r.key for p in plans.values() for r in p})
    log(f"[report] {total} runs planned ({', '.join(f'{n} {len(p)}' for n, p in plans.items())}; shared runs "
        f"count once)"
        f" on {ctx.data}")
    store = RunStore(out)
    run_all([r for p in plans.values() for r in p], store, tests, log)
    sections = [m.render(ctx, [(r, store.get(r)) for r in plans[n]])
                for n, m in modules.items()]
    trained = sum(store.records[k].get("seconds", 0) for k in
                  {r.key for p in plans.values() for r in p})
    path = _write(ctx, ds.meta, sections, command, time.time() - t0, trained)
    log(f"[report] wrote {path}")
    return path


def _input_auc(ctx: Context, tests: TestSets) -> dict:
    """Each objective's own input score (the upstream model's pxtr) scored on test: the
    AUC an ensemble has to beat for that objective."""
    from trainables.metrics import auc
    t = tests.get(ctx.data, ctx.objectives)
    out = {}
    for k, o in enumerate(ctx.objectives):
        try:
            out[o] = auc(t.scores[:, k], t.labels[:, k])
        except ValueError:          # one class only on test
            out[o] = float("nan")
    return out


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
             + " | test AUC of its own input score |", "|" + "---|" * (len(ctx.counts) + 2)]
    for o in ctx.objectives:
        cells = [f"{p:,} of {n:,} ({p / max(1, n):.2%})"
                 for p, n in (ctx.counts[s][o] for s in ctx.counts)]
        lines.append(f"| {o} | " + " | ".join(cells) + f" | {ctx.input_auc[o]:.3f} |")
    if mp_test:
        lines += ["", "The input scores are the MP stage's predictions (`source.mp_auc` in the "
                  "dataset's meta.yaml has its AUCs per split)."]
    return lines


def _write(ctx: Context, meta: dict, sections, command: str, seconds: float,
           trained: float) -> Path:
    import torch
    findings = [f for s in sections for f in s.findings]
    t = ctx.training
    md = [
        "# Fidelity report: HarmonRank's claims on real logs", "",
        f"Generated by `{command}`" if command else "", "",
        f"Dataset: `{ctx.data}`" + (f", made by `{meta['created_by']}`"
                                   if meta.get("created_by") else "") + ".  ",
        f"Objectives: {', '.join(ctx.objectives)}. Seeds: {', '.join(map(str, ctx.seeds))}. "
        f"Training: {t['model']['family']} network, Adam lr {t['optim']['lr']}, batch "
        f"{t['optim']['batch_size']}, {t['optim']['epochs']} epochs; the epoch with the best "
        "validation AUC sum is scored on test.  ",
        f"Machine: {platform.machine()}, torch threads per run: {t['run'].get('threads')}, torch "
        f"{torch.__version__}, Python {sys.version.split()[0]}. The runs trained for "
        f"{trained / 60:.1f} min in all; this invocation took {seconds / 60:.1f} min (runs "
        "already in runs.jsonl are not retrained).", "",
        "## Where the real data agrees and disagrees with the paper", "",
        *[f"- {f}" for f in findings], "",
        "## Data", "", *_data_table(ctx, meta), "",
        "An AUC measured on a few dozen positives is noisy whatever the seed: see the "
        "standard errors under the loss table.", ""]
    for s in sections:
        md += [f"## {s.title}", "", s.markdown, ""]
    path = ctx.out / "report.md"
    path.write_text("\n".join(md))
    (ctx.out / "report.json").write_text(json.dumps(
        {"command": command, "data": str(ctx.data), "objectives": ctx.objectives,
         "seeds": ctx.seeds, "training": ctx.training, "options": ctx.options,
         "counts": ctx.counts, "findings": findings,
         "sections": {s.title: s.findings for s in sections}}, indent=1, default=str))
    return path
