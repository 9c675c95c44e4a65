"""Cox proportional-hazards models (lifelines), the nested likelihood-ratio test, Kaplan–Meier and log-rank.

Every model is fitted through ``fit``, which records the rows it was fitted on, so that ``lrt`` can refuse to
compare models that are not nested or not fitted on the same patients: the statistic is
2·(log L_full − log L_reduced) on df = (parameters_full − parameters_reduced), and a model compared with
itself gives exactly 0 on 0 df. Ties are handled by Efron's method, as in R's ``survival::coxph``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test, proportional_hazard_test
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Covariate:
    """How a clinical variable enters the design: numeric (divided by ``scale``) or categorical (dummies
    against ``reference``)."""

    column: str
    label: str
    scale: float = 1.0
    reference: str | None = None  # set → categorical

    def columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        values = frame[self.column]
        if self.reference is None:
            return pd.DataFrame({self.label: values.astype(float) / self.scale}, index=frame.index)
        levels = [v for v in sorted(values.astype(str).unique()) if v != self.reference]
        return pd.DataFrame(
            {f"{self.label}: {level}": (values.astype(str) == level).astype(float) for level in levels},
            index=frame.index,
        )


def design(frame: pd.DataFrame, covariates: Sequence[Covariate]) -> pd.DataFrame:
    """The numeric design matrix of ``covariates`` (one column per parameter), with ``time`` and ``event``.
    Dummy columns of levels absent from this frame are dropped, so a subgroup never carries an empty level."""
    missing = [c.column for c in covariates if c.column not in frame.columns]
    if missing:
        raise KeyError(f"columns not in the table: {', '.join(missing)}")
    parts = [c.columns(frame) for c in covariates]
    x = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
    x = x.loc[:, x.nunique() > 1]
    return pd.concat([x, frame[["time", "event"]].astype(float)], axis=1)


def _rows_digest(x: pd.DataFrame) -> str:
    """Identifies the patients a model was fitted on (their index, times and events)."""
    h = hashlib.sha256()
    h.update(np.asarray(x.index.astype(str)).astype("U").tobytes())
    h.update(x[["time", "event"]].to_numpy(np.float64).tobytes())
    return h.hexdigest()[:16]


def null_log_likelihood(time: np.ndarray, event: np.ndarray) -> float:
    """Partial log-likelihood of the model with no covariates (all risks equal), Efron's ties:
    −Σ_t Σ_{l<d_t} log(n_t − l), n_t at risk and d_t deaths at each distinct death time t."""
    time, event = np.asarray(time, float), np.asarray(event, float)
    total = 0.0
    for t in np.unique(time[event == 1]):
        at_risk, deaths = int((time >= t).sum()), int(((time == t) & (event == 1)).sum())
        total -= np.log(at_risk - np.arange(deaths)).sum()
    return float(total)


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model: tidy coefficients, log-likelihoods, concordance and the proportional-hazards check."""

    name: str
    terms: tuple[str, ...]
    n: int
    events: int
    rows: str
    log_likelihood: float
    log_likelihood_null: float
    concordance: float
    table: pd.DataFrame  # per term: coef, se, hr, lower, upper, z, p
    ph: pd.DataFrame  # per term: scaled Schoenfeld residual test (statistic, p)
    model: CoxPHFitter | None = field(default=None, repr=False, compare=False)

    @property
    def lr_statistic(self) -> float:
        """Likelihood-ratio statistic against the model without covariates (R's "Likelihood ratio test")."""
        return 2.0 * (self.log_likelihood - self.log_likelihood_null)

    def hr(self, term: str) -> pd.Series:
        if term not in self.table.index:
            raise KeyError(f"model {self.name!r} has no term {term!r}; terms: {', '.join(self.terms)}")
        return self.table.loc[term]


def fit(
    frame: pd.DataFrame, covariates: Sequence[Covariate], name: str = "", penalizer: float = 0.0, check_ph: bool = True
) -> CoxResult:
    """Fit a Cox model of ``time``/``event`` on ``covariates`` (Efron ties) and check proportional hazards (unless
    ``check_ph`` is False, as in a simulation that reads only the coefficients: ``ph`` is then empty)."""
    x = design(frame, covariates)
    if x["event"].sum() == 0:
        raise ValueError(f"model {name!r}: no events among {len(x)} patients")
    if x[["time", "event"]].isna().any().any() or (x["time"] <= 0).any():
        raise ValueError(f"model {name!r}: time must be positive and time/event complete")
    terms = tuple(c for c in x.columns if c not in ("time", "event"))
    ll0 = null_log_likelihood(x["time"].to_numpy(), x["event"].to_numpy())
    if not terms:
        empty = pd.DataFrame(columns=["coef", "se", "hr", "lower", "upper", "z", "p"])
        return CoxResult(name, (), len(x), int(x["event"].sum()), _rows_digest(x), ll0, ll0, 0.5, empty,
                         pd.DataFrame(columns=["statistic", "p"]))  # fmt: skip
    model = CoxPHFitter(penalizer=penalizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, duration_col="time", event_col="event")
    s = model.summary
    table = _hazard_ratios(s["coef"], s["se(coef)"], s.index).assign(z=s["z"], p=s["p"])
    return CoxResult(
        name=name,
        terms=terms,
        n=len(x),
        events=int(x["event"].sum()),
        rows=_rows_digest(x),
        log_likelihood=float(model.log_likelihood_),
        log_likelihood_null=ll0,
        concordance=float(model.concordance_index_),
        table=table,
        ph=ph_test(model, x) if check_ph else pd.DataFrame(columns=["statistic", "p"]),
        model=model,
    )


def coefficients(frame: pd.DataFrame, covariates: Sequence[Covariate], max_steps: int = 50) -> pd.DataFrame:
    """``fit``'s coefficient table (coef, se, hr, lower, upper) alone, without lifelines' summaries: the partial
    likelihood maximised by Newton–Raphson in a few array operations, for a simulation that fits thousands of models.
    Without tied death times Breslow's likelihood, used here, is Efron's; with ties this returns ``fit``'s table."""
    beta, covariance, terms = estimates(frame, covariates, max_steps)
    return _hazard_ratios(beta, np.sqrt(np.diag(covariance)), terms)


def estimates(frame: pd.DataFrame, covariates: Sequence[Covariate], max_steps: int = 50, ties: str = "efron"
              ) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """The coefficients, their covariance matrix (the inverse information) and the terms' names: by Newton–Raphson
    (``coefficients``) without tied death times, by lifelines (Efron) with them; with ``ties="breslow"`` tied deaths
    stay in the Newton–Raphson fit as Breslow's approximation (a resampled cohort, whose patients drawn twice tie,
    in a hundredth of lifelines' time). A design whose information matrix is singular (a score that is a copy of
    another term) gives NaN, not an error: no contrast can be estimated."""
    x = design(frame, covariates)
    time, event = x.pop("time").to_numpy(), x.pop("event").to_numpy() == 1
    tied = ties != "breslow" and pd.Series(time[event]).duplicated().any()
    if not event.any() or tied or x.shape[1] == 0:
        model = fit(frame, covariates, check_ph=False).model
        if model is None:
            return np.zeros(0), np.zeros((0, 0)), []
        return model.params_.to_numpy(), model.variance_matrix_.to_numpy(), list(model.params_.index)
    if np.linalg.matrix_rank(x.to_numpy(float) - x.to_numpy(float).mean(axis=0)) < x.shape[1]:
        nan = np.full(x.shape[1], np.nan)
        return nan, np.full((x.shape[1], x.shape[1]), np.nan), list(x.columns)
    order = np.argsort(-time, kind="stable")  # latest first: a row's risk set is the rows up to its last tie
    z = x.to_numpy(float)[order]
    z -= z.mean(axis=0)
    died = event[order]
    last = np.searchsorted(-time[order], -time[order], side="right") - 1

    def evaluate(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Log partial likelihood, its gradient and the information matrix at ``beta``."""
        eta = z @ beta
        top = eta.max()  # shifted before exp: no overflow
        w = np.exp(eta - top)
        s0 = np.cumsum(w)[last][died]
        mean = np.cumsum(w[:, None] * z, axis=0)[last][died] / s0[:, None]
        # Σ_deaths (Σ_risk set w·z·zᵀ)/s0 = Σ_rows w·z·zᵀ·(Σ of 1/s0 over the deaths whose risk set holds the row)
        share = np.zeros(len(z))
        np.add.at(share, last[died], 1.0 / s0)
        share = np.cumsum(share[::-1])[::-1] * w
        loglik = float((eta[died] - top - np.log(s0)).sum())
        return loglik, (z[died] - mean).sum(axis=0), (z * share[:, None]).T @ z - mean.T @ mean

    beta = np.zeros(z.shape[1])
    loglik, gradient, information = evaluate(beta)
    for _ in range(max_steps):
        step = np.linalg.solve(information, gradient)
        for _ in range(30):  # halve a step that lowers the likelihood
            new = evaluate(beta + step)
            if new[0] >= loglik - 1e-12:
                break
            step = step / 2
        beta, gained = beta + step, new[0] - loglik
        loglik, gradient, information = new
        if gained < 1e-10 and np.abs(step).max() < 1e-8:
            break
    else:
        raise RuntimeError(f"Cox fit did not converge in {max_steps} Newton steps")
    return beta, np.linalg.inv(information), list(x.columns)


def contrast(frame: pd.DataFrame, covariates: Sequence[Covariate], first: str, second: str, ties: str = "efron"
             ) -> dict[str, float]:  # fmt: skip
    """The ratio of two terms' hazard ratios in one model, exp(β_first − β_second), with its Wald 95 % interval and
    p (from the covariance of the two coefficients): a head-to-head comparison of two scores on the same patients,
    each adjusted for the other. Two identical scores give the ratio 1 with the interval [1, 1] (nothing tells them
    apart); a design in which the two cannot be separated otherwise gives NaN."""
    if np.array_equal(frame[covariates_column(covariates, first)], frame[covariates_column(covariates, second)]):
        return {"value": 1.0, "lower": 1.0, "upper": 1.0, "p": 1.0}
    beta, cov, terms = estimates(frame, covariates, ties=ties)
    i, j = terms.index(first), terms.index(second)
    d, se = beta[i] - beta[j], np.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
    p = float(2 * stats.norm.sf(abs(d / se))) if np.isfinite(se) and se > 0 else np.nan
    return {"value": float(np.exp(d)), "lower": float(np.exp(d - Z95 * se)), "upper": float(np.exp(d + Z95 * se)),
            "p": p}  # fmt: skip


def covariates_column(covariates: Sequence[Covariate], label: str) -> str:
    """The table column of the numeric covariate labelled ``label``."""
    return next(c.column for c in covariates if c.label == label)


def _hazard_ratios(coef: Sequence[float], se: Sequence[float], terms: Sequence[str]) -> pd.DataFrame:
    """Per term: coefficient, standard error, hazard ratio and its Wald 95 % interval."""
    coef, se = np.asarray(coef, dtype=float), np.asarray(se, dtype=float)
    return pd.DataFrame({"coef": coef, "se": se, "hr": np.exp(coef), "lower": np.exp(coef - Z95 * se),
                         "upper": np.exp(coef + Z95 * se)}, index=pd.Index(terms, name="term"))  # fmt: skip


def ph_test(model: CoxPHFitter, x: pd.DataFrame) -> pd.DataFrame:
    """Scaled Schoenfeld residuals against Kaplan–Meier-transformed time, per term (R's ``cox.zph`` default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = proportional_hazard_test(model, x, time_transform="km")
    out = result.summary[["test_statistic", "p"]].rename(columns={"test_statistic": "statistic"})
    out.index = [i if isinstance(i, str) else i[0] for i in out.index]
    out.index.name = "term"
    return out


@dataclass(frozen=True)
class LRT:
    """A nested-model likelihood-ratio test."""

    full: str
    reduced: str
    statistic: float
    df: int
    p: float
    added: tuple[str, ...]


def lrt(full: CoxResult, reduced: CoxResult) -> LRT:
    """Likelihood-ratio test of ``reduced`` nested in ``full``: 2·(log L_full − log L_reduced) ~ χ²(df),
    df = the number of parameters ``full`` adds. Refuses models fitted on different patients or not nested; where
    ``full`` fits worse than ``reduced`` (its fit did not converge) the statistic and p are NaN, with a warning."""
    if full.rows != reduced.rows:
        raise ValueError(
            f"models {full.name!r} (n={full.n}) and {reduced.name!r} (n={reduced.n}) were fitted on different "
            "patients; a likelihood-ratio test needs the same rows"
        )
    extra = set(reduced.terms) - set(full.terms)
    if extra:
        raise ValueError(
            f"{reduced.name!r} is not nested in {full.name!r}: it has terms {sorted(extra)} the other lacks"
        )
    added = tuple(t for t in full.terms if t not in reduced.terms)
    statistic = 2.0 * (full.log_likelihood - reduced.log_likelihood)
    df = len(added)
    if statistic < -1e-6:  # the optimiser stopped short on the larger model (separation, a near-empty level)
        message = f"{full.name!r} fits worse than the model nested in it ({statistic:.3g}): its fit did not converge"
        warnings.warn(message + ", so the likelihood-ratio test has no value (NaN)", RuntimeWarning, stacklevel=2)
        return LRT(full.name, reduced.name, float("nan"), df, float("nan"), added)
    statistic = max(statistic, 0.0)
    p = float(stats.chi2.sf(statistic, df)) if df > 0 else 1.0
    return LRT(full.name, reduced.name, float(statistic), df, p, added)


def tidy(results: Sequence[CoxResult], terms: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One table of hazard ratios from several models: model, term, HR, 95 % CI, p (``terms`` filters and
    renames terms)."""
    rows = []
    for r in results:
        for term, row in r.table.iterrows():
            if terms is not None and term not in terms:
                continue
            rows.append({"model": r.name, "term": terms[term] if terms else term, "HR": row["hr"],
                         "95% CI": f"{row['lower']:.2f}–{row['upper']:.2f}", "lower": row["lower"],
                         "upper": row["upper"], "p": row["p"], "n": r.n, "events": r.events})  # fmt: skip
    return pd.DataFrame(rows)


def quartile_cuts(values: pd.Series) -> np.ndarray:
    """The three cut points (25th, 50th, 75th percentiles) fixed on the development cohort."""
    return np.quantile(np.asarray(values, float), [0.25, 0.5, 0.75])


def quartiles(values: pd.Series, cuts: np.ndarray) -> pd.Series:
    """Q1 (lowest risk) … Q4 (highest) by fixed cut points (carried unchanged to another cohort)."""
    labels = np.array(["Q1", "Q2", "Q3", "Q4"])
    return pd.Series(labels[np.searchsorted(cuts, np.asarray(values, float), side="right")], index=values.index)


def kaplan_meier(frame: pd.DataFrame, group: str) -> dict[str, KaplanMeierFitter]:
    """One Kaplan–Meier fit per level of ``group`` (sorted)."""
    fits = {}
    for level, g in sorted(frame.groupby(group), key=lambda kv: str(kv[0])):
        fits[str(level)] = KaplanMeierFitter(label=str(level)).fit(g["time"], g["event"])
    return fits


def survival_at(fits: Mapping[str, KaplanMeierFitter], years: Sequence[float]) -> pd.DataFrame:
    """Kaplan–Meier survival (%) of each group at the given years."""
    return pd.DataFrame(
        {f"{y:g} y": [100 * float(f.survival_function_at_times(y).iloc[0]) for f in fits.values()] for y in years},
        index=list(fits),
    )


def logrank(frame: pd.DataFrame, group: str, low: str = "Q1", high: str = "Q4") -> pd.DataFrame:
    """Log-rank tests: across all levels of ``group``, and ``high`` against ``low``."""
    overall = multivariate_logrank_test(frame["time"], frame[group], frame["event"])
    a, b = frame[frame[group] == high], frame[frame[group] == low]
    pair = logrank_test(a["time"], b["time"], a["event"], b["event"])
    return pd.DataFrame(
        [
            {"test": f"all {frame[group].nunique()} groups", "statistic": overall.test_statistic,
             "df": overall.degrees_of_freedom, "p": overall.p_value},
            {"test": f"{high} vs {low}", "statistic": pair.test_statistic, "df": 1, "p": pair.p_value},
        ]
    )  # fmt: skip
