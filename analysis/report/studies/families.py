"""Model families at equal member-epochs: the frontiers of ``fusion`` (the industry's
weighted formula), ``mlp``, ``harmonrank`` and a preference-conditioned ``harmonrank``
(docs/DESIGN.md, "Conditioned training"), against the input scores.

Each static family trains K + 1 models per seed, one per loss-weight vector (the K corners
of the simplex and its centre), E epochs each: (K + 1) x E member-epochs. The conditioned
HarmonRank trains one model per seed for E epochs with K + 1 preferences per step, which
costs the same (K + 1) x E member-epochs, and is scored on test at every point of its
Das-Dennis grid. Every model's (grid point's) point is the epoch its own weights choose on
validation (the report's epoch rule). A family's frontier (per seed) is its points' test
AUCs; its hypervolume is taken against AUC 0.5 on every objective (chance), mean over
seeds ± SE (seed spread and the test set's own noise, bootstrap over test rows).

The input scores are baseline points (``analysis.baselines``): score_j ranked against every
objective. Per objective, each family's best AUC (the best of its points, mean over seeds)
is compared with the best single input score on that objective; a family "reaches" it when
its best is not below it beyond Z = 2 SE of the difference, and one that does not is named,
with its gap on validation too (below there as well: its training does not find the
input's ranking; not below there: the point chosen on validation does not carry over to
the test day). The families' hypervolumes are compared with the input scores' own.
"""
from __future__ import annotations

import math

import numpy as np

from analysis.frontier import hypervolume

from ..context import Context, Section
from ..runs import Run
from ..verdicts import Z, finding, measure

FAMILIES = ("fusion", "mlp", "harmonrank", "conditioned")
NAMES = {"fusion": "fusion (weighted formula)", "mlp": "MLP", "harmonrank": "HarmonRank",
         "conditioned": "conditioned HarmonRank"}
MAX_OBJECTIVES = 3           # the most well-measured objectives the study uses
REF = 0.5                    # hypervolume reference AUC on every objective: chance


def objectives_of(ctx: Context) -> list[str]:
    """The objectives given (``family_objectives``), else the first MAX_OBJECTIVES with at
    least 100 test positives (all when fewer than two have that many)."""
    given = ctx.options.get("family_objectives")
    if given:
        return list(given)
    ok = ctx.well_measured()
    return (ok if len(ok) >= 2 else list(ctx.objectives))[:MAX_OBJECTIVES]


def weight_vectors(objectives) -> list[dict]:
    """The K corners of the simplex and its centre."""
    k = len(objectives)
    corners = [{o: float(i == j) for j, o in enumerate(objectives)} for i in range(k)]
    return corners + [{o: 1.0 / k for o in objectives}]


def plan(ctx: Context) -> list[Run]:
    objs = objectives_of(ctx)
    epochs = ctx.training["optim"]["epochs"]
    runs = []
    for s in ctx.seeds:
        for fam in FAMILIES[:3]:
            for i, w in enumerate(weight_vectors(objs)):
                cfg = ctx.config(objectives=objs, weights=w, model={"family": fam})
                runs.append(Run("families", f"{fam} w{i}", s, cfg,
                                {"family": fam, "member_epochs": epochs}))
        cfg = ctx.config(objectives=objs, model={"family": "harmonrank"})
        cfg["conditioning"] = {"per_batch": len(objs) + 1}
        runs.append(Run("families", "harmonrank conditioned", s, cfg,
                        {"family": "conditioned", "member_epochs": epochs * (len(objs) + 1)}))
    return runs


def winners(best: dict, gap) -> tuple[str, list[str]]:
    """best: family -> mean best AUC on one objective; gap(top, f) -> the Measure of
    top's best minus f's. The family with the highest AUC and those not behind it beyond
    Z SE of the difference."""
    top = max(best, key=best.get)
    return top, [f for f in best if f != top and gap(top, f).beyond() <= 0]


def _points(look, recs, fam, seed, objs) -> np.ndarray:
    rows = []
    for rec in recs.get((fam, seed), []):
        rows += look.points(rec) if rec.get("points") else [look.auc(rec)]
    return np.array([[r[o] for o in objs] for r in rows], dtype=float).reshape(-1, len(objs))


def _hv(recs, fam, objs):
    def stat(look, seed):
        P = _points(look, recs, fam, seed, objs)
        return hypervolume(P, [REF] * len(objs)) if len(P) else math.nan
    return stat


def _best(recs, fam, k, objs):
    def stat(look, seed):
        P = _points(look, recs, fam, seed, objs)
        return float(P[:, k].max()) if len(P) else math.nan
    return stat


def _diff(a, b):
    return lambda look, seed: a(look, seed) - b(look, seed)


def _inputs_hv(objs):
    return lambda look, seed: hypervolume(
        np.array([[v[o] for o in objs] for v in look.inputs().values()]), [REF] * len(objs))


def _valid_best(recs, fam, o) -> float:
    """The family's best validation AUC on ``o`` (mean over seeds of the per-seed max)."""
    per = {}
    for (f, s), rs in recs.items():
        if f == fam:
            vals = [p["valid"][o] for r in rs for p in (r.get("points") or [r])]
            per[s] = max(vals)
    return float(np.mean(list(per.values()))) if per else math.nan


def weight_spread(recs, fam, objs) -> float:
    """How much a family's models differ by weight: per seed and epoch, the range of
    validation AUC across its models (a conditioned model: across its grid points) on
    each objective; the largest over epochs and objectives, mean over seeds. Near 0: the
    loss weights barely change what the family learns."""
    per_seed = []
    for (f, _), rs in recs.items():
        if f != fam:
            continue
        worst = 0.0
        if len(rs) == 1 and rs[0]["history"][0].get("points"):
            for e in rs[0]["history"]:
                V = np.array([[p["valid"][o] for o in objs] for p in e["points"]])
                worst = max(worst, float(np.ptp(V, axis=0).max()))
        else:
            by_epoch: dict = {}
            for r in rs:
                for e in r["history"]:
                    by_epoch.setdefault(e["epoch"], []).append([e["valid"][o] for o in objs])
            for rows in by_epoch.values():
                worst = max(worst, float(np.ptp(np.array(rows), axis=0).max()))
        per_seed.append(worst)
    return float(np.mean(per_seed)) if per_seed else math.nan


def _reach(ctx, recs, fams, objs) -> tuple[list[str], dict, list[str]]:
    """Per objective: each family against the best single input score (the section's
    lines with the reasons, the numbers, and one short sentence per objective)."""
    lines, out, short = [], {}, []
    inputs = ctx.inputs(objs)
    for k, o in enumerate(objs):
        name = max(inputs, key=lambda n: inputs[n][o])
        inp = lambda look, seed, n=name, o=o: look.inputs()[n][o]   # noqa: E731
        row = {}
        for f in fams:
            m = measure(ctx.noise, ctx.seeds, _diff(_best(recs, f, k, objs), inp))
            row[f] = {"gap": m, "reaches": m.beyond() >= 0, "beats": m.beyond() > 0}
        missing = [f for f in fams if not row[f]["reaches"]]
        why = []
        for f in missing:
            v, iv = _valid_best(recs, f, o), ctx.valid_inputs.get(name, {}).get(o, math.nan)
            where = ("below it on validation too: its training does not find the input's "
                     "ranking" if v < iv else "not below it on validation: the point chosen "
                     "on validation does not carry over to the test day")
            spread = weight_spread(recs, f, objs)
            if spread < 0.005:
                where += (f", and its models at different weights differ by at most "
                          f"{spread:.4f} (validation AUC at the same epoch): the weights "
                          f"barely move what it learns")
            why.append(f"{NAMES[f]} {row[f]['gap'].pm()}; best validation AUC {v:.4f} vs "
                       f"the input's {iv:.4f}: {where}")
        beat = [NAMES[f] for f in fams if row[f]["beats"]]
        lines.append(f"- {o}: the best single input is {name} ({inputs[name][o]:.4f}); "
                     f"beyond {Z:g} SE above it: {', '.join(beat) or 'no family'}; " +
                     ("every family reaches it within noise." if not missing else
                      "cannot reach it: " + "; ".join(why) + "."))
        short.append(f"{o} (best single input {name}, {inputs[name][o]:.4f}): above it beyond "
                     f"{Z:g} SE: {', '.join(beat) or 'no family'}; cannot reach it within noise: "
                     f"{', '.join(NAMES[f] for f in missing) or 'no family'}.")
        out[o] = {"input": name, "input_auc": inputs[name][o],
                  "families": {f: {"gap": r["gap"].as_json(), "reaches": r["reaches"],
                                   "beats": r["beats"]} for f, r in row.items()}}
    return lines, out, short


def _table(ctx, recs, fams, objs):
    """The best-AUC table rows and statements, with winners."""
    head = "| objective (test positives) | " + " | ".join(NAMES[f] for f in fams) + \
        " | best single input | wins |"
    table, statements, wins, best = [head, "|" + "---|" * (len(fams) + 3)], [], {}, {}
    inputs = ctx.inputs(objs)
    for k, o in enumerate(objs):
        pos = ctx.counts["test"][o][0]
        meas = {f: measure(ctx.noise, ctx.seeds, _best(recs, f, k, objs)) for f in fams}
        best[o] = meas

        def gap(a, b, k=k):
            return measure(ctx.noise, ctx.seeds, _diff(_best(recs, a, k, objs),
                                                       _best(recs, b, k, objs)))

        top, tied = winners({f: m.effect for f, m in meas.items()}, gap)
        wins[o] = (top, tied)
        name = max(inputs, key=lambda n: inputs[n][o])
        verdict = f"{NAMES[top]}" + (f"; tie within noise: {', '.join(NAMES[f] for f in tied)}"
                                     if tied else " (beyond noise)")
        table.append(f"| {o} ({pos:,}) | " + " | ".join(
            f"{meas[f].effect:.4f} ± {meas[f].se:.4f}" for f in fams) +
            f" | {inputs[name][o]:.4f} ({name}) | {verdict} |")
        statements.append(f"{o}: best AUC {meas[top].effect:.4f} from {NAMES[top]}" +
                          (f", a tie within noise with {', '.join(NAMES[f] for f in tied)}"
                           if tied else f", ahead of every other family beyond noise ({Z:g} SE)")
                          + ".")
    return table, statements, wins, best


def _figure(ctx, recs, fams, objs):
    """All seeds' points of every family, the input scores as stars, points that do not
    beat them crossed (Hanley-McNeil SEs on the test split, z = 1 as in analysis frontier)."""
    from analysis.baselines import Baselines, versus
    from analysis.noise import auc_se
    from analysis.frontier import pareto_front
    from analysis.plots import plot_tradeoffs
    look = ctx.noise.original()
    rows, groups = [], []
    for f in fams:
        for s in ctx.seeds:
            P = _points(look, recs, f, s, objs)
            rows.append(P)
            groups += [NAMES[f]] * len(P)
    F = np.vstack(rows) if rows else np.zeros((0, len(objs)))
    counts = np.array([ctx.counts["test"][o] for o in objs], dtype=float)
    pos, neg = counts[:, 0], counts[:, 1] - counts[:, 0]
    inputs = ctx.inputs(objs)
    B = np.array([[v[o] for o in objs] for v in inputs.values()])
    base = Baselines(list(inputs), B, auc_se(B, pos, neg), np.stack([pos, neg], 1), "test")
    front = pareto_front(F)
    marks = versus(F, auc_se(F, pos, neg), base, 1.0)
    marked = [i for i in front if marks[i] != "beats"]
    return plot_tradeoffs(F, objs, groups, front, ctx.figures / "families.png",
                          title="Model families (all seeds) and the input scores",
                          se=auc_se(F, pos, neg), baselines=base, marked=marked), \
        len(marked), len(front)


def _group(pairs):
    """(family, seed) -> its finished records, and family -> member-epochs per seed."""
    recs: dict = {}
    spent: dict = {}                 # (family, seed) -> member-epochs of its runs
    for run, rec in pairs:
        key = (run.extra["family"], run.seed)
        spent[key] = spent.get(key, 0) + run.extra["member_epochs"]
        if rec is not None and rec["status"] == "ok":
            recs.setdefault(key, []).append(rec)
    return recs, {f: max(v for (g, _), v in spent.items() if g == f) for f, _ in spent}


def _hypervolumes(ctx, recs, fams, objs, cost):
    """The hypervolume table, each family's HV and its gap to the input scores' HV, and
    the ordering statement with the gaps between neighbours."""
    hv = {f: measure(ctx.noise, ctx.seeds, _hv(recs, f, objs)) for f in fams}
    hv_in = measure(ctx.noise, ctx.seeds, _inputs_hv(objs))
    vs_in = {f: measure(ctx.noise, ctx.seeds, _diff(_hv(recs, f, objs), _inputs_hv(objs)))
             for f in fams}
    lines = ["| family | member-epochs per seed | points per seed | hypervolume ± SE (seeds "
             "+ test rows) | per seed | minus the input scores' HV ± SE | spread across "
             "weights |", "|---|---|---|---|---|---|---|"]
    for f in fams:
        n = np.mean([len(_points(ctx.noise.original(), recs, f, s, objs)) for s in ctx.seeds
                     if (f, s) in recs])
        lines.append(f"| {NAMES[f]} | {cost[f]} | {n:.0f} | {hv[f].effect:.5f} ± "
                     f"{hv[f].se:.5f} | {', '.join(f'{h:.5f}' for h in hv[f].per_seed)} | "
                     f"{vs_in[f].effect:+.5f} ± {vs_in[f].se:.5f} | "
                     f"{weight_spread(recs, f, objs):.4f} |")
    lines.append(f"| *the input scores ({len(ctx.inputs(objs))} points)* | - | - | "
                 f"*{hv_in.effect:.5f} ± {hv_in.se:.5f}* (test rows) | - | - | - |")
    order = sorted(fams, key=lambda f: -hv[f].effect)
    steps = [f"{NAMES[a]} - {NAMES[b]} " + measure(ctx.noise, ctx.seeds, _diff(
        _hv(recs, a, objs), _hv(recs, b, objs))).pm(5) for a, b in zip(order, order[1:])]
    statement = "Hypervolume: " + " > ".join(
        f"{NAMES[f]} {hv[f].effect:.5f}" for f in order) + " (gaps: " + "; ".join(steps) + ")."
    return lines, hv, hv_in, vs_in, statement


def render(ctx: Context, pairs) -> Section:
    objs = objectives_of(ctx)
    recs, cost = _group(pairs)
    fams = [f for f in FAMILIES if any(k[0] == f for k in recs)]
    if not fams:
        return Section("Model families at equal member-epochs", "No family finished a run.")
    lines, hv, hv_in, vs_in, statement = _hypervolumes(ctx, recs, fams, objs, cost)
    table, statements, wins, best = _table(ctx, recs, fams, objs)
    statements = [statement, *statements]
    reach, reach_data, short = _reach(ctx, recs, fams, objs)
    beat_hv = [NAMES[f] for f in fams if vs_in[f].beyond() > 0]
    below_hv = [NAMES[f] for f in fams if vs_in[f].beyond() < 0]
    plain = (f"In hypervolume, beyond {Z:g} SE above the input scores' own "
             f"({hv_in.effect:.5f}): {', '.join(beat_hv) or 'no family'}; below them: "
             f"{', '.join(below_hv) or 'no family'}. Per objective:")
    png, n_marked, n_front = _figure(ctx, recs, fams, objs)
    findings = [finding("families/hypervolume", "note (the paper has no such baseline)",
                        f"families at equal member-epochs: {statements[0]} " +
                        " ".join(statements[1:]), hypervolume=hv,
                        hv_gap_to_inputs=vs_in, hv_inputs=hv_in),
                finding("families/input_scores", "note (the paper has no such baseline)",
                        "the input scores as baselines: " + plain + " " + " ".join(short) +
                        " (the families section says why)", per_objective=reach_data,
                        hv_gap_to_inputs=vs_in)]
    md = "\n".join([
        f"Objectives {', '.join(objs)}; {ctx.training['optim']['epochs']} epochs per model; "
        f"each model's point by the {ctx.rule} epoch rule. Each static family trains "
        f"{len(objs) + 1} models per seed with static loss weights "
        "(the corners of the simplex and its centre); the conditioned HarmonRank trains one "
        f"model per seed with {len(objs) + 1} preferences per step: the same member-epochs. "
        f"Hypervolume of each seed's test-AUC points against AUC {REF} per objective; seeds "
        f"{', '.join(map(str, ctx.seeds))}. Spread across weights: the largest range of "
        "validation AUC between a family's models (grid points) at the same epoch, mean over "
        "seeds; near 0, its loss weights barely change what it learns.", "", *lines, "",
        "Best test AUC per objective (the best of a family's points, mean over seeds) ± its "
        "SE (seed spread and test rows); a family not behind the best beyond "
        f"{Z:g} SE of the difference is a tie.", "", *table, "",
        *[f"- {s}" for s in statements], "",
        "**Against the input scores.** " + plain, "", *reach, "",
        f"Frontier points (all families and seeds together) that do not beat the input "
        f"scores (crossed in the figure; Hanley-McNeil SEs, z = 1): {n_marked} of {n_front}.",
        "", f"![Families and input scores]({png.name})"])
    data = {"objectives": objs, "hv": {f: hv[f].as_json() for f in fams},
            "hv_inputs": hv_in.as_json(), "hv_gap_to_inputs": {f: m.as_json()
                                                               for f, m in vs_in.items()},
            "best": {o: {f: m.as_json() for f, m in b.items()} for o, b in best.items()},
            "wins": wins, "inputs": reach_data,
            "weight_spread": {f: weight_spread(recs, f, objs) for f in fams}}
    return Section("Model families at equal member-epochs", md, findings, data)
