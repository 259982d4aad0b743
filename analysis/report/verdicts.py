"""Noise-aware verdicts: every claim of the report is an effect with its combined noise.

An effect is a statistic of the runs' test AUCs, computed per seed and averaged over the
seeds. Its noise has two parts that add in variance:

- the seed spread: the standard deviation of the per-seed values over sqrt(seeds) (the
  SE of the seed mean; unknown with one seed);
- the test set's own noise: the SE of the seed mean over B bootstrap resamples of the
  test rows (``bootstrap.py``), which more seeds do not reduce.

SE = sqrt(SE_seeds^2 + SE_test^2). A verdict on a claim that the effect is positive says
"agrees" when effect > Z x SE, "disagrees" when effect < -Z x SE, and "inconclusive"
otherwise (Z = 2, about a 95% two-sided interval). Every "±" in the report says which
of these it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Z = 2.0


@dataclass
class Measure:
    effect: float                 # the mean over seeds of the per-seed statistic
    per_seed: list[float]
    se_seed: float                # NaN with one seed
    se_test: float
    extra: dict = field(default_factory=dict)
    second: str = "test rows"     # what the second SE is the noise of

    @property
    def se(self) -> float:
        seed = self.se_seed if math.isfinite(self.se_seed) else 0.0
        return math.sqrt(seed ** 2 + self.se_test ** 2)

    def z(self) -> float:
        return self.effect / self.se if self.se > 0 else math.copysign(math.inf, self.effect)

    def beyond(self, z: float = Z) -> int:
        """+1 / -1 when the effect is beyond z SE above / below 0, else 0."""
        if not math.isfinite(self.effect):
            return 0
        return 1 if self.effect > z * self.se else -1 if self.effect < -z * self.se else 0

    def pm(self, digits: int = 4, pct: bool = False) -> str:
        """``+0.0123 ± 0.0045 (SE: seeds 0.0030, test rows 0.0034)``."""
        u = "%" if pct else ""
        seed = f"{self.se_seed:.{digits}f}{u}" if math.isfinite(self.se_seed) else \
            "n/a, 1 seed"
        return (f"{self.effect:+.{digits}f}{u} ± {self.se:.{digits}f}{u} (SE: seeds {seed}, "
                f"{self.second} {self.se_test:.{digits}f}{u})")

    def as_json(self) -> dict:
        return {"effect": self.effect, "se": self.se, "se_seeds": _none(self.se_seed),
                "se_test": self.se_test, "se_test_is": self.second, "z": _none(self.z()), "per_seed": self.per_seed,
                **self.extra}


def _none(v):
    return v if v is not None and math.isfinite(v) else None


def measure(noise, seeds, per_seed, **extra) -> Measure:
    """``per_seed(look, seed) -> float`` (a statistic of one seed's test AUCs, read through
    ``look``: ``bootstrap._Look``), averaged over ``seeds``, with both SEs."""
    seeds = list(seeds)

    def mean(look):
        v = [per_seed(look, s) for s in seeds]
        v = [x for x in v if x is not None and math.isfinite(x)]
        return float(np.mean(v)) if v else math.nan

    value, boots = noise.replicate(mean)
    first = [per_seed(noise.original(), s) for s in seeds]
    vals = np.array([x for x in first if x is not None and math.isfinite(x)], dtype=float)
    se_seed = float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else math.nan
    boots = boots[np.isfinite(boots)]
    se_test = float(boots.std(ddof=1)) if len(boots) > 1 else math.nan
    return Measure(value, [float(x) for x in first], se_seed, se_test, dict(extra))


def judge(m: Measure, z: float = Z) -> str:
    """The verdict on a claim that ``m.effect`` is positive."""
    return {1: "agrees", -1: "disagrees", 0: "inconclusive"}[m.beyond(z)]


def finding(claim: str, verdict: str, text: str, **numbers) -> dict:
    """One finding: ``claim`` ("<study>/<what>", the same on any data, so two reports'
    verdicts can be paired), the verdict word, the sentence and every number behind it."""
    return {"claim": claim, "study": claim.split("/")[0], "verdict": verdict,
            "text": f"{verdict}: {text}",
            "numbers": {k: (v.as_json() if isinstance(v, Measure) else v)
                        for k, v in numbers.items()}}
