"""Run the training loop as a data-parallel group of plain processes (torch.distributed,
gloo on CPU): what a Ray Train worker group does, in seconds and without Ray."""
from __future__ import annotations

import json
from pathlib import Path


def _worker(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    import torch
    import torch.distributed as dist

    from trainables.loop import train_loop_per_worker
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        history = train_loop_per_worker(cfg)
        Path(out, f"{rank}.json").write_text(json.dumps(history))
    finally:
        dist.destroy_process_group()


def run_workers(cfg: dict, world: int, out) -> list[list[dict]]:
    """Each worker's per-epoch metrics, rank by rank."""
    import torch.multiprocessing as mp

    from .ray_local import free_ports
    Path(out).mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(world, free_ports(1)[0], cfg, str(out)), nprocs=world, join=True)
    return [json.loads(Path(out, f"{r}.json").read_text()) for r in range(world)]
