"""Everything specific to KuaiRand (Gao et al., CIKM 2022), in one place.

- ``schema``: its files, columns and objectives; the features the MP stage uses;
- ``checks``, ``loader``: read, validate and join the CSV files (:func:`load_kuairand`);
- ``days``: days as the command line writes them; ``requests``: requests from exposures;
- ``splits``: early-stopping rows and the ME splits; ``config`` + ``mp.yaml``: the MP
  stage's config and its documented default; ``pipeline``: the MP stage end to end;
  ``cli``: ``python -m trainables.mp kuairand``.

The MP stage's dataset-independent parts (models, codes, training loop, writer) are
``trainables.mp``. This module re-exports the loader's public names (no torch import):

    from trainables import kuairand as kr
    logs = kr.load_kuairand(folder, days=kr.parse_days("2022-04-25:2022-04-30"))
"""
from __future__ import annotations

from .days import fmt_days, parse_day, parse_days, sorted_days
from .loader import KuaiRandLogs, load_kuairand
from .requests import assign_requests, request_sizes
from .schema import (CATEGORICAL_FEATURES, DURATION_EDGES_S, ID_FEATURES, LOG_COLUMNS,
                     ME_FEATURES, NUMERIC_FEATURES, OBJECTIVES, UNKNOWN, USER_COLUMNS,
                     VIDEO_AGE_EDGES_D, VIDEO_COLUMNS)

__all__ = ["CATEGORICAL_FEATURES", "DURATION_EDGES_S", "ID_FEATURES", "KuaiRandLogs",
           "LOG_COLUMNS", "ME_FEATURES", "NUMERIC_FEATURES", "OBJECTIVES", "UNKNOWN",
           "USER_COLUMNS", "VIDEO_AGE_EDGES_D", "VIDEO_COLUMNS", "assign_requests",
           "fmt_days", "load_kuairand", "parse_day", "parse_days", "request_sizes",
           "sorted_days"]
