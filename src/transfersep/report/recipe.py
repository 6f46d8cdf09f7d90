"""The recipe test: is recipe x better than recipe y, with training noise counted?

One trained model per grid point answers "is this model better than that one on this audio". A
recipe (pretraining then fine-tuning; a pretraining length; an objective) is a distribution of
trained models, so comparing two recipes needs the training repeated (Dietterich 1998; Bouthillier
et al. 2021, "Accounting for variance in machine learning benchmarks"): here over replicates, one
unit per (fold, seed), each unit the difference of the two recipes' mean SI-SDR on that fold's test
set.

- **One fold** (seeds only): the units share the training data and the test pieces and differ by
  every seed a run uses; they are independent draws of the training noise, and the one-sample
  t-test over them (``scipy.stats.ttest_1samp``) answers "does recipe x beat recipe y, trained on
  this set, on these test pieces".
- **Several folds**: the test pieces change with the fold, so the claim is about pieces like these,
  but the training sets of two folds overlap (all pieces but the test ones), which makes the units
  positively correlated and the plain t-test anti-conservative. The corrected resampled t-test of
  Nadeau & Bengio (2003) replaces the variance factor 1/J of the mean by 1/J + n_test/n_train
  (J units, n_test / n_train the test and training pieces of one fold).
- **P(x better)**: the share of units where x beats y (a tie counts one half), the "probability of
  outperforming" of Bouthillier et al., with the Clopper–Pearson 95 % interval of a binomial
  proportion (``scipy.stats.binomtest``) on the number of wins; conservative for independent units,
  and only indicative over folds, whose units are correlated.

Below two units there is no test: one replicate supports a claim about that trained model only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from transfersep.report.stats import ALPHA


@dataclass
class RecipeTest:
    n: int  # units holding both recipes' runs: (fold, seed) pairs
    n_folds: int
    n_seeds: int
    mean: float | None  # mean over units of x - y (dB)
    sd: float | None  # between-unit standard deviation (ddof=1), None below 2 units
    ci: tuple[float, float] | None  # two-sided t-interval of the mean (corrected over folds)
    p: float | None  # one-sided p of the (corrected) t-test over units; None below 2 units
    significant: bool  # p < alpha
    p_better: float | None  # share of units where x beats y (a tie counts 1/2)
    p_better_ci: tuple[float, float] | None  # Clopper-Pearson interval of that share
    claim: str  # "one trained model" | "recipe, these test pieces" | "recipe, over folds of pieces"
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def recipe_test(
    diffs: pd.Series,
    test_train: float | None = None,
    alternative: str = "greater",
    alpha: float = ALPHA,
    confidence: float = 0.95,
) -> RecipeTest:
    """The recipe column of one comparison.

    Args:
        diffs: one value per unit, indexed by a MultiIndex (fold, seed): mean SI-SDR of x minus that
            of y on that fold's test set (same fold, same seed index).
        test_train: n_test / n_train (pieces or takes) of one fold, for the Nadeau–Bengio correction
            when several folds share training pieces (None there: the plain test, said in the note).
        alternative: "greater" (x better), "less" or "two-sided", as scipy.
    """
    d = diffs.dropna().astype(np.float64)
    n = int(d.size)
    folds = d.index.get_level_values(0) if n and isinstance(d.index, pd.MultiIndex) else []
    seeds = d.index.get_level_values(1) if n and isinstance(d.index, pd.MultiIndex) else []
    n_folds, n_seeds = len(set(folds)) or int(n > 0), len(set(seeds)) or int(n > 0)
    claim = (
        "one trained model"
        if n < 2
        else ("recipe, over folds of pieces" if n_folds > 1 else "recipe, these test pieces")
    )
    if n == 0:
        return RecipeTest(0, 0, 0, None, None, None, None, False, None, None, claim, "no replicate holds both runs")
    v = d.to_numpy()
    wins = float((v > 0).sum() + 0.5 * (v == 0).sum())
    p_better = wins / n
    band = stats.binomtest(int((v > 0).sum()), n).proportion_ci(confidence, method="exact")
    p_better_ci = (float(band.low), float(band.high))
    if n < 2:
        note = "1 replicate: a claim about that trained model only (train more seeds for the recipe)"
        return RecipeTest(n, n_folds, n_seeds, float(v[0]), None, None, None, False, p_better, p_better_ci, claim, note)
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    factor, notes = 1.0 / n, []
    if n_folds > 1:
        if test_train is None:
            notes.append("n_test/n_train not recorded: the t-test is uncorrected for overlapping training sets")
        else:
            factor += float(test_train)  # Nadeau & Bengio (2003)
    se = sd * math.sqrt(factor)
    df = n - 1
    if se == 0:
        p = 0.0 if (mean > 0 if alternative == "greater" else mean < 0 if alternative == "less" else mean != 0) else 1.0
        ci = (mean, mean)
    else:
        t = mean / se
        p = float(
            {"greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df)}.get(alternative, 2 * stats.t.sf(abs(t), df))
        )
        half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
        ci = (mean - half, mean + half)
    if n < 4:
        notes.append(f"{n} replicates: the t-test rests on their normality, which so few cannot show")
    return RecipeTest(
        n, n_folds, n_seeds, mean, sd, ci, p, bool(p < alpha), p_better, p_better_ci, claim, "; ".join(notes)
    )
