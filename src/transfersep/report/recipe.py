"""The recipe column: is training recipe x better than recipe y, with training noise counted.

The paper's column and the per-unit column (``stats``) compare two *trained models*: a claim about
those two networks, whatever another seed would have given. A claim about the *recipe* needs
several trained models per recipe — replicates (seeds) and, for "pieces like these", several folds
of test pieces — and a test whose noise is the spread between them (Dietterich 1998; Bouthillier
et al. 2021).

Units are (fold, seed) pairs holding a run of both recipes; each unit gives one number, the mean
SI-SDR of x minus that of y on that fold's test set (same fold, same seed index).

- **One fold**: the units differ only by seed on the same data, so they are independent draws of
  the training noise and the one-sample t-test over them applies (``scipy.stats.ttest_1samp``).
  The claim is about the recipe on *these test pieces*: their fixed difficulty is part of what is
  measured, not noise.
- **Several folds**: the folds' test pieces are a sample of pieces, but their training sets share
  pieces, so their results are positively correlated and the plain t-test over-rejects. The seeds
  of a fold also share its test set. The test therefore runs over the fold means (J = number of
  folds, each the mean over its seeds) with Nadeau & Bengio's (2003) corrected resampled t-test:
  variance factor 1/J + n_test/n_train instead of 1/J, J − 1 degrees of freedom. Without
  ``test_train`` the uncorrected t over fold means is used and the note says so.

``p_better`` is the probability of outperforming (Bouthillier et al. 2021): the share of units
where x beats y, a tie counting 1/2. Its interval is Clopper–Pearson's
(``scipy.stats.binomtest(...).proportion_ci(method="exact")``) over the units for one fold (its
seeds are independent) and over the folds for several (their units share training pieces and test
sets: the share times the number of folds is the count, so the interval is wide — counted over
the units it covered 1/2 in only 63-74 % of null studies); with a half-integer count (ties) its
low end is taken from the count rounded down and its high end from the count rounded up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from transfersep.report.stats import ALPHA

CLAIMS = ("one trained model", "recipe, these test pieces", "recipe, over folds of pieces")


@dataclass
class RecipeTest:
    n: int  # units holding both recipes' runs: (fold, seed) pairs
    n_folds: int
    n_seeds: int
    mean: float | None  # mean over units of the per-unit difference x - y (dB)
    sd: float | None  # between-unit standard deviation (ddof=1), None below 2 units
    ci: tuple[float, float] | None  # two-sided `confidence` t-interval of the mean (corrected over folds)
    p: float | None  # one-sided (by default) p of the t-test (corrected over folds); None below 2 units
    significant: bool  # p < alpha
    p_better: float | None  # share of units where x beats y (a tie counts 1/2)
    p_better_ci: tuple[float, float] | None  # its Clopper-Pearson interval
    claim: str  # one of CLAIMS ("no runs" without a unit)
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def _t(mean: float, se: float, df: int, alternative: str, confidence: float) -> tuple[float, tuple[float, float]]:
    """p of H0: mean = 0 and the two-sided interval, for an estimate with standard error ``se``."""
    if se == 0:  # every unit alike: no spread to test against
        p = 1.0 if mean == 0 else float({"greater": mean < 0, "less": mean > 0, "two-sided": False}[alternative])
        return p, (mean, mean)
    t = mean / se
    p = {
        "greater": stats.t.sf(t, df),
        "less": stats.t.cdf(t, df),
        "two-sided": 2 * stats.t.sf(abs(t), df),
    }[alternative]
    lo, hi = stats.t.interval(confidence, df, loc=mean, scale=se)
    return float(p), (float(lo), float(hi))


def p_better_interval(wins: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson interval of a share ``wins / n`` (``wins`` may be half-integer: ties)."""
    lo = stats.binomtest(int(np.floor(wins)), n).proportion_ci(confidence, method="exact").low
    hi = stats.binomtest(int(np.ceil(wins)), n).proportion_ci(confidence, method="exact").high
    return float(lo), float(hi)


def recipe_test(
    diffs: pd.Series,
    test_train: float | None = None,
    alternative: str = "greater",
    alpha: float = ALPHA,
    confidence: float = 0.95,
) -> RecipeTest:
    """diffs: one value per unit, indexed by a MultiIndex (fold, seed) -> mean SI-SDR of x minus
    that of y on that fold's test set (same fold, same seed index). NaN diffs are dropped.

    test_train: n_test / n_train (pieces or takes) of one fold, used for the Nadeau & Bengio
    (2003) corrected resampled t-test when several folds share training pieces (variance factor
    1/J + n_test/n_train instead of 1/J, over the J fold means); with one fold the units differ
    only by seed on the same data and the plain one-sample t-test applies
    (``scipy.stats.ttest_1samp``). See the module docstring.
    """
    d = diffs.dropna().astype(np.float64)
    if not isinstance(d.index, pd.MultiIndex):  # a plain index: seeds of one fold
        d.index = pd.MultiIndex.from_arrays([np.zeros(len(d), dtype=np.int64), d.index], names=["fold", "seed"])
    n = len(d)
    n_folds = int(d.index.get_level_values(0).nunique())
    n_seeds = int(d.index.get_level_values(1).nunique())
    if n == 0:
        return RecipeTest(0, 0, 0, None, None, None, None, False, None, None, "no runs", "no unit holds both recipes")
    v = d.to_numpy()
    wins = float((v > 0).sum() + 0.5 * (v == 0).sum())
    mean = float(v.mean())
    pb = wins / n
    # across folds the units share training pieces: the interval counts one unit per fold
    pb_ci = (
        p_better_interval(pb * n_folds, n_folds, confidence) if n_folds > 1 else p_better_interval(wins, n, confidence)
    )
    notes: list[str] = []
    if n == 1:
        return RecipeTest(
            1, n_folds, n_seeds, mean, None, None, None, False, pb, pb_ci, CLAIMS[0],
            "1 replicate: a claim about that trained model only",
        )  # fmt: skip
    sd = float(v.std(ddof=1))
    if n_folds == 1:
        claim = CLAIMS[1]
        if sd == 0:  # every seed alike: nothing for scipy's t to divide by
            p, ci = _t(mean, 0.0, n - 1, alternative, confidence)
        else:
            p = float(stats.ttest_1samp(v, 0.0, alternative=alternative).pvalue)
            band = stats.ttest_1samp(v, 0.0).confidence_interval(confidence)
            ci = (float(band.low), float(band.high))
    else:
        claim = CLAIMS[2]
        fm = d.groupby(level=0).mean().to_numpy()
        j = len(fm)
        factor = 1.0 / j + (test_train if test_train is not None else 0.0)
        if test_train is None:
            notes.append("n_test/n_train not given: the t-test over folds is not corrected for shared training pieces")
        p, ci = _t(float(fm.mean()), float(np.sqrt(factor * fm.var(ddof=1))), j - 1, alternative, confidence)
        if j < 3:
            notes.append(f"{j} folds: 1 degree of freedom, a wide interval")
    m = n_folds if n_folds > 1 else n
    if p_better_interval(m, m, confidence)[0] <= 0.5:
        notes.append(f"{m} {'folds' if n_folds > 1 else 'units'}: too few for p_better's interval to exclude 1/2")
    return RecipeTest(
        n, n_folds, n_seeds, mean, sd, ci, p, bool(p is not None and p < alpha), pb, pb_ci, claim, "; ".join(notes)
    )
