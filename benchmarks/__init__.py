"""Benchmarks, kept outside the product packages; run them from the repository root.

    python -m benchmarks.throughput    samples/s of the training step, per model x loss
    python -m benchmarks.population    a population vs the same members one after another
    python -m benchmarks.frontier      searchers' hypervolume at equal budget (Ray)
    python -m benchmarks.gpu_sweep     population trials vs packed fractional-GPU trials (Ray)

They share their common flags (``_args``). Timings are printed, never asserted in tests.
"""
