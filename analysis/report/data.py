"""The report's dataset: an ME dataset folder given by the user, or one made here from
KuaiRand logs by the MP stage; positive counts per split; the label-skew copies."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

SPLITS = ("train", "valid", "test")


MP_STAGE_FILE = "mp_stage.json"      # in the report folder: the MP stage's time and threads


def mp_dataset(out: Path, logs, train_days, score_days, *, seed: int = 0, threads: int = 0,
               log=print) -> Path:
    """``out/me_dataset`` made by the MP stage (its default config,
    trainables/kuairand/mp.yaml: MMoE, PE-LTR task weights; the report's seed) with
    ``threads`` torch threads (0: torch's default), or the one a previous run of the same
    report left there. Its wall time and threads go to ``out/mp_stage.json``, which the
    report counts in its total."""
    import json
    import time
    from trainables.kuairand.days import fmt_days, sorted_days
    target = Path(out) / "me_dataset"
    record = Path(out) / MP_STAGE_FILE
    if (target / "meta.yaml").is_file():
        meta = yaml.safe_load((target / "meta.yaml").read_text())
        src = meta.get("source") or {}
        want = {"train_days": [str(d) for d in sorted_days(train_days)],
                "score_days": [str(d) for d in sorted_days(score_days)]}
        have = {k: [str(d) for d in src.get(k, [])] for k in want}
        if have != want:
            raise ValueError(f"{target}: an MP output for train days {have['train_days']} and "
                             f"score days {have['score_days']} is already there, not the days "
                             f"asked for; use another EXPERIMENT folder")
        made_by = meta.get("created_by", "")
        log(f"[report] reusing the MP output {target}" + (f" ({made_by})" if made_by else ""))
        if record.is_file():
            info = json.loads(record.read_text())
            record.write_text(json.dumps({**info, "this_invocation": False}))
        return target
    import torch
    from trainables.kuairand.config import load_config
    from trainables.kuairand.pipeline import run
    train_days, score_days = sorted_days(train_days), sorted_days(score_days)
    log(f"[report] MP stage: {logs} train {fmt_days(train_days)} -> score "
        f"{fmt_days(score_days)}, {threads or 'default'} torch thread(s)")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.time()
    try:
        run(logs, train_days, score_days, target,
            load_config(None, {"train": {"seed": seed}}),
            command=f"paretune report MP stage (seed {seed})", progress=True)
    finally:
        torch.set_num_threads(before)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"seconds": round(time.time() - t0, 1),
                                  "threads": int(threads) or before,
                                  "this_invocation": True}))
    return target


def positives(path, objectives) -> dict[str, dict[str, tuple[int, int]]]:
    """split -> objective -> (positives, rows)."""
    out = {}
    meta = yaml.safe_load((Path(path) / "meta.yaml").read_text())
    for split in SPLITS:
        info = meta["splits"].get(split)
        if info is None:
            continue
        file = Path(path) / info.get("file", f"{split}.parquet")
        t = pq.read_table(file, columns=[f"label_{o}" for o in objectives])
        out[split] = {o: (int(np.asarray(t.column(f"label_{o}")).sum()), t.num_rows)
                      for o in objectives}
    return out


def skewed_copy(src, dst, objective: str, factor: int, seed: int = 0) -> tuple[Path, int, int]:
    """A copy of dataset ``src`` whose train split keeps 1/``factor`` of the rows positive for
    ``objective`` (at least one), drawn at random; valid and test are unchanged. Rows are
    dropped, as in HarmonRank's Table 7 (down-sampling positives on the training set
    only). Returns (folder, positives before, positives kept)."""
    src, dst = Path(src), Path(dst)
    meta = yaml.safe_load((src / "meta.yaml").read_text())
    train_file = src / meta["splits"]["train"].get("file", "train.parquet")
    label = pq.read_table(train_file, columns=[f"label_{objective}"]).column(0)
    pos = np.flatnonzero(np.asarray(label) > 0)
    keep_n = max(1, int(round(len(pos) / factor))) if len(pos) else 0
    if (dst / "meta.yaml").is_file():
        return dst, len(pos), keep_n
    table = pq.read_table(train_file)
    rng = np.random.default_rng([seed, factor])
    drop = np.setdiff1d(pos, rng.choice(pos, keep_n, replace=False))
    mask = np.ones(table.num_rows, dtype=bool)
    mask[drop] = False
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}-", dir=dst.parent))
    try:
        for split, info in meta["splits"].items():
            name = info.get("file", f"{split}.parquet")
            if split == "train":
                pq.write_table(table.filter(pa.array(mask)), tmp / name)
                info["rows"] = int(mask.sum())
            else:
                shutil.copyfile(src / name, tmp / name)
        meta["created_by"] = (f"{meta.get('created_by') or src}; then the report's label skew: "
                              f"{objective} train positives {len(pos)} -> {keep_n} "
                              f"({factor}x fewer)")
        (tmp / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        tmp.rename(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst, len(pos), keep_n
