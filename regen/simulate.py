r"""Simulated follow-up cohorts with a known mechanistic truth.

:func:`cohort` draws patients, treatments and visits in the file schema of
:mod:`regen.tables`, from a regeneration model whose parameters are returned in
``sim.truth`` and whose per-treatment latent values are returned in
``sim.events``, so every estimator in regen can be checked against the truth.

Physiology
----------
A percutaneous freeze is a Sunderland grade II axonotmesis: the axons distal to
the ice ball undergo Wallerian degeneration over the first days to weeks, the
endoneurial tubes stay intact, and the axons regrow down them at roughly
1-2 mm/day (Seddon; about 1.4 mm/day on average) until they reach the skin
territory. Until then the territory is numb and the nerve's pain signal is
blocked; relief outlasts sensory recovery by a short and variable margin.

The model
---------
For treatment :math:`i` of patient :math:`j` (age :math:`a_i` at treatment,
diabetes :math:`D_j`, smoking :math:`S_j`, distance :math:`d_i` in mm from the
freeze site to the territory)::

    log v_i = log v_ref + log(r_age) (a_i - 50) / 10 + log(r_dm) D_j
              + log(r_smk) S_j + sigma_v eps_i,            eps_i ~ N(0, 1)
    T_i     = L + d_i / v_i                                (recovery day)
    numb_i(t)     = 1{1 <= t < T_i},  0 at baseline (t <= 0)
    R_i           ~ Bernoulli(p_resp)                      (responder)
    E_i           = T_i + G_i,  G_i ~ Gamma(k, mu_ext / k) (end of relief)
    relieved_i(t) = R_i 1{1 <= t < E_i}
    pain_i(t) <= floor(B_i / 2)  exactly when relieved_i(t)

=================  ==============================================  =========================
symbol             meaning                                         truth key / events column
=================  ==============================================  =========================
v_ref              median velocity at age 50, no diabetes,         ``velocity_mm_per_day``
                   non-smoker (mm/day)
sigma_v            SD of log velocity between treated nerves       ``velocity_sd_log``
L                  lag: Wallerian degeneration and axon sprouting  ``lag_days``
r_age              velocity ratio per decade above 50              ``age_velocity_ratio_per_decade``
r_dm, r_smk        velocity ratios for diabetes and smoking        ``diabetes_velocity_ratio``,
                                                                   ``smoker_velocity_ratio``
d_i                distance, lognormal per nerve (NERVE_DISTANCES) ``distance_mm``
a_i                ``treated_on.year - birth_year``                ``age``
v_i, T_i           velocity and recovery day (continuous)          ``velocity_mm_per_day``,
                                                                   ``recovery_day``
p_resp, R_i        responder probability and indicator             ``p_response``, ``responder``
mu_ext, k          mean and shape of the extra relief after T_i    ``relief_extension_days``,
                                                                   ``relief_extension_shape``
E_i                day relief ends (NaN for non-responders)        ``relief_end_day``
B_i                recorded baseline pain, integer 3-10            ``baseline_pain``
=================  ==============================================  =========================

Observation: one baseline visit per treatment on a day in [-14, 0], then the
visit ``schedule`` with integer jitter, missed visits (``p_missed``), dropout
(``dropout_per_year`` is the probability of leaving follow-up within a year)
and, for a retreatment of the same nerve and side 90-300 days later, the end of
the earlier treatment's visits at the retreatment date. Relieved pain is about
25-35 % of baseline, with visit-to-visit noise (SD ``pain_noise_sd``); by
default the noise is clipped so that it never crosses the 50 % line, hence relief
and numbness episodes are exactly derivable from the truth (with the default
``p_misclassified=0``). With ``pain_noise_crosses=True`` it is not: a relieved
visit can score above the line and an unrelieved one below it, as real pain
scores do (see ``docs/episodes.md``). The procedure (decompression or not)
has no effect in the truth: a null covariate for the models to find null.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_NERVE_MIX", "NERVE_DISTANCES", "SimulatedCohort", "cohort"]

#: Freeze site to skin territory, mm: lognormal ``(median_mm, sd_log)`` per nerve.
#: Chosen so that, for the simulated population (median velocity about
#: 1.33 mm/day, 10-day lag), median sensory recovery falls at about 5-6 weeks
#: for occipital nerves (relief 6.5-8 weeks; about a third of greater occipital
#: treatments still relieved at 8 weeks, as in the occipital pilot), 8 weeks for
#: facial nerves, 10-11 weeks for the knee nerves (relief about 85-90 days, "up
#: to 90 days") and 6 months (about 185 days) for intercostal nerves.
NERVE_DISTANCES: dict[str, tuple[float, float]] = {
    "greater_occipital": (40.0, 0.25),
    "lesser_occipital": (35.0, 0.25),
    "third_occipital": (30.0, 0.25),
    "supraorbital": (60.0, 0.20),
    "supratrochlear": (55.0, 0.20),
    "auriculotemporal": (50.0, 0.25),
    "infrapatellar_saphenous": (80.0, 0.25),
    "anterior_femoral_cutaneous": (90.0, 0.25),
    "intercostal": (230.0, 0.12),
}

#: Default share of treatments per nerve (the mix of a headache and knee practice).
DEFAULT_NERVE_MIX: dict[str, float] = {
    "greater_occipital": 0.35,
    "lesser_occipital": 0.10,
    "third_occipital": 0.05,
    "supraorbital": 0.10,
    "infrapatellar_saphenous": 0.20,
    "anterior_femoral_cutaneous": 0.10,
    "intercostal": 0.10,
}

_MIDLINE_NERVES = ("third_occipital",)
_HEADACHE_NERVES = ("greater_occipital", "lesser_occipital", "third_occipital")
_REFERENCE_AGE = 50
_RETREAT_GAP_DAYS = (90, 300)
_BASELINE_WINDOW_DAYS = (-14, 0)
_RELIEF_THRESHOLD = 0.5
_RELIEF_EXTENSION_SHAPE = 2.0
_RELIEVED_PAIN_FRACTION = (0.25, 0.35)
_BASELINE_PAIN = {"mean": 6.5, "sd": 1.5, "min": 3, "max": 10}
_POPULATION = {
    "p_female": 0.6, "age_mean": 52.0, "age_sd": 13.0, "age_range": [25, 85],
    "p_diabetes": 0.15, "p_smoker": 0.2, "bmi_mean": 27.0, "bmi_sd": 5.0, "bmi_range": [16, 50],
}
_RATIOS = ("age_velocity_ratio_per_decade", "diabetes_velocity_ratio", "smoker_velocity_ratio")
_PROBABILITIES = ("p_bilateral", "p_retreat", "p_decompression", "p_missed", "dropout_per_year",
                  "p_misclassified", "p_response")
_FORMATS = ("csv", "parquet", "xlsx")
_EXCEL_MAX_ROWS = 1_048_575  # one row is the header


@dataclass(frozen=True, repr=False, eq=False)
class SimulatedCohort:
    """A simulated cohort: the three follow-up tables, the truth and the latent events.

    Parameters
    ----------
    patients, treatments, visits : pandas.DataFrame
        The follow-up tables in the schema of :mod:`regen.tables` (dates as
        ``datetime64``, booleans as ``bool``; ``treatments`` has no ``age``).
    truth : dict
        Every parameter used, JSON-serialisable (``json.dumps(sim.truth)``).
    events : pandas.DataFrame
        One row per treatment: ``patient_id, treatment_id, nerve, side,
        distance_mm, age, diabetes, velocity_mm_per_day, recovery_day,
        responder, relief_end_day, baseline_pain, smoker, procedure``.

    Examples
    --------
    >>> from regen.simulate import cohort
    >>> sim = cohort(20, seed=1)
    >>> len(sim.events) == len(sim.treatments), sim.truth["velocity_mm_per_day"]
    (True, 1.4)
    """

    patients: pd.DataFrame
    treatments: pd.DataFrame
    visits: pd.DataFrame
    truth: dict[str, Any]
    events: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"SimulatedCohort(patients={len(self.patients)}, treatments={len(self.treatments)}, "
            f"visits={len(self.visits)}, seed={self.truth['seed']})"
        )

    def write(self, folder: str | os.PathLike[str], format: str = "csv", *,
              force: bool = False) -> Path:
        """Write the three tables as files that :func:`regen.read_cohort` reads.

        Parameters
        ----------
        folder : str or path-like
            Output folder, created if missing. Files regen wrote there before are
            replaced; any other file of the same name is refused
            (:class:`~regen.exceptions.OutputError`) unless ``force=True``. A table
            file of another format already in the folder (``visits.csv`` when writing
            Parquet) is refused whatever ``force`` says: the folder would then hold
            two files for one table.
        format : {"csv", "parquet", "xlsx"}
            ``csv`` and ``parquet`` write ``patients``, ``treatments`` and
            ``visits`` files; ``xlsx`` writes one workbook ``cohort.xlsx`` with
            three sheets. Dates are ISO ``YYYY-MM-DD`` text in every format;
            booleans are ``yes``/``no`` in CSV and native booleans otherwise.
        force : bool, default False
            Replace files of the same name that regen did not write.

        Returns
        -------
        pathlib.Path
            The folder (csv, parquet) or the workbook (xlsx) written.

        Examples
        --------
        >>> import tempfile
        >>> sim = cohort(5, seed=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sorted(p.name for p in sim.write(tmp).iterdir())
        ['patients.csv', 'treatments.csv', 'visits.csv']
        """
        if not isinstance(format, str) or format.lower() not in _FORMATS:
            raise ValueError(f"format must be one of {', '.join(_FORMATS)}; got {format!r}")
        if not isinstance(folder, str | os.PathLike):
            raise TypeError(f"folder must be a path, got {type(folder).__name__}")
        fmt = format.lower()
        tables = {
            "patients": _file_frame(self.patients, text_booleans=fmt == "csv"),
            "treatments": _file_frame(self.treatments, text_booleans=fmt == "csv"),
            "visits": _file_frame(self.visits, text_booleans=fmt == "csv"),
        }
        if fmt == "xlsx" and len(tables["visits"]) > _EXCEL_MAX_ROWS:
            raise ValueError(
                f"an Excel sheet holds at most {_EXCEL_MAX_ROWS:,} rows; the visits table has "
                f"{len(tables['visits']):,}. Write csv or parquet instead."
            )
        from regen._write import Outputs
        from regen.exceptions import OutputError
        from regen.io import input_files

        outputs = Outputs(force=force)
        out = outputs.folder(folder)
        if fmt == "xlsx":
            return outputs.write_workbook(tables, outputs.file(out / "cohort.xlsx"))
        paths = {name: out / f"{name}.{fmt}" for name in tables}
        others = [p for p in input_files(out) if p.name not in {q.name for q in paths.values()}]
        if others:
            raise OutputError(f"{out} already holds {', '.join(p.name for p in others)}; "
                              f"{fmt} files beside them would give a table two files and the "
                              "folder could not be read: choose another folder, or move them")
        outputs.files(paths.values())
        for name, frame in tables.items():
            outputs.write_table(frame, paths[name])
        return out


def _file_frame(frame: pd.DataFrame, *, text_booleans: bool) -> pd.DataFrame:
    """Dates to ISO text and (for CSV) booleans to yes/no, on a copy."""
    out = frame.copy()
    for name in out.columns:
        values = out[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            out[name] = np.datetime_as_string(values.to_numpy().astype("datetime64[D]"))
        elif text_booleans and pd.api.types.is_bool_dtype(values):
            out[name] = np.where(values.to_numpy(), "yes", "no")
    return out


def cohort(
    n_patients: int,
    *,
    seed: int | None = None,
    velocity_mm_per_day: float = 1.4,
    velocity_sd_log: float = 0.25,
    lag_days: float = 10.0,
    age_velocity_ratio_per_decade: float = 0.93,
    diabetes_velocity_ratio: float = 0.8,
    smoker_velocity_ratio: float = 0.95,
    nerves: Mapping[str, float] | None = None,
    p_bilateral: float = 0.3,
    p_retreat: float = 0.2,
    p_decompression: float = 0.1,
    schedule: Sequence[int] = (7, 30, 60, 90, 120, 180, 270, 365),
    jitter_days: int = 3,
    p_missed: float = 0.1,
    dropout_per_year: float = 0.15,
    p_misclassified: float = 0.0,
    p_response: float = 0.8,
    relief_extension_days: float = 14.0,
    baseline_pain_mean: float = 6.5,
    baseline_pain_sd: float = 1.5,
    pain_noise_sd: float = 0.7,
    pain_noise_crosses: bool = False,
    time_columns: Sequence[str] = ("visit_date",),
    start_date: str | _dt.date = "2021-01-01",
    end_date: str | _dt.date = "2024-06-30",
) -> SimulatedCohort:
    """Simulate a follow-up cohort from the regeneration model.

    Each patient has one index procedure on one nerve (unilateral, bilateral
    with ``p_bilateral``, or midline), possibly repeated on the same nerve and
    sides 90-300 days later. The model is in the module docstring.

    Parameters
    ----------
    n_patients : int
        Number of patients, at least 1.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`; the same seed gives identical
        tables. ``None`` draws fresh entropy, recorded in ``truth["seed"]``.
    velocity_mm_per_day : float, default 1.4
        Median regrowth velocity at age 50, no diabetes, non-smoker (> 0).
    velocity_sd_log : float, default 0.25
        SD of log velocity between treated nerves (>= 0).
    lag_days : float, default 10.0
        Days before regrowth starts (Wallerian degeneration), >= 0.
    age_velocity_ratio_per_decade : float, default 0.93
        Multiplicative change of velocity per 10 years above age 50 (> 0).
    diabetes_velocity_ratio, smoker_velocity_ratio : float, default 0.8, 0.95
        Multiplicative change of velocity with diabetes / smoking (> 0).
    nerves : mapping of str to float, optional
        Expected share of treatments per nerve (normalised to sum 1; each
        patient is treated on one nerve, chosen so that bilateral treatments do
        not skew the shares); names from :data:`NERVE_DISTANCES`. Default
        :data:`DEFAULT_NERVE_MIX`.
    p_bilateral : float, default 0.3
        Probability that a lateral nerve is treated left and right together.
    p_retreat : float, default 0.2
        Probability of a retreatment of the same nerve and sides 90-300 days later.
    p_decompression : float, default 0.1
        Probability that a procedure is ``cryo_with_decompression`` (no effect).
    schedule : sequence of int, default (7, 30, 60, 90, 120, 180, 270, 365)
        Nominal follow-up days, strictly increasing and positive.
    jitter_days : int, default 3
        Uniform integer jitter of each visit, kept after day 0 and between neighbours.
    p_missed : float, default 0.1
        Probability that a scheduled visit is missed.
    dropout_per_year : float, default 0.15
        Probability of leaving follow-up within a year (exponential time).
    p_misclassified : float, default 0.0
        Probability that a post-treatment ``numb`` flag is flipped.
    p_response : float, default 0.8
        Probability that a treatment relieves pain at all.
    relief_extension_days : float, default 14.0
        Mean of the Gamma-distributed relief beyond sensory recovery (>= 0).
    baseline_pain_mean, baseline_pain_sd : float, default 6.5, 1.5
        Baseline pain is ``normal(mean, sd)`` clipped to 3-10 and rounded; the mean
        must lie in 3-10 and the SD be >= 0 (``5, 0``: every baseline is 5).
    pain_noise_sd : float, default 0.7
        SD of the noise of a pain score at a visit after the treatment (>= 0).
    pain_noise_crosses : bool, default False
        False: the noise never carries a score across the relief line, so relief is
        exactly derivable from the truth. True: scores are ``rint(mean + noise)``
        clipped to 0-10 only, so a relieved visit may score as unrelieved (and the
        reverse), as in practice.
    time_columns : sequence of {"day", "visit_date"}, default ("visit_date",)
        Time columns written in the visits table.
    start_date, end_date : str or datetime.date, default 2021-01-01, 2024-06-30
        Range of ``treated_on`` (retreatments included).

    Returns
    -------
    SimulatedCohort
        ``patients``, ``treatments``, ``visits``, ``truth`` and ``events``.

    Examples
    --------
    >>> from regen.simulate import cohort
    >>> sim = cohort(300, seed=42)
    >>> list(sim.visits.columns)
    ['treatment_id', 'visit_date', 'numb', 'numbness', 'pain', 'headache_days']
    >>> bool((sim.events.recovery_day > sim.truth["lag_days"]).all())
    True
    """
    arguments = dict(locals())
    n = _check_number("n_patients", n_patients, low=1, integer=True)
    seed_used = _check_seed(seed)
    v_ref = _check_number("velocity_mm_per_day", velocity_mm_per_day, low=0, low_open=True)
    sd_log = _check_number("velocity_sd_log", velocity_sd_log, low=0)
    lag = _check_number("lag_days", lag_days, low=0)
    ratios = {k: _check_number(k, arguments[k], low=0, low_open=True) for k in _RATIOS}
    probs = {k: _check_number(k, arguments[k], low=0, high=1) for k in _PROBABILITIES}
    extension = _check_number("relief_extension_days", relief_extension_days, low=0)
    pain_mean = _check_number("baseline_pain_mean", baseline_pain_mean,
                              low=_BASELINE_PAIN["min"], high=_BASELINE_PAIN["max"])
    pain_sd = _check_number("baseline_pain_sd", baseline_pain_sd, low=0)
    noise_sd = _check_number("pain_noise_sd", pain_noise_sd, low=0)
    if not isinstance(pain_noise_crosses, bool | np.bool_):
        raise TypeError(f"pain_noise_crosses must be True or False, got {pain_noise_crosses!r}")
    crosses = bool(pain_noise_crosses)
    jitter = _check_number("jitter_days", jitter_days, low=0, integer=True)
    mix = _check_nerves(DEFAULT_NERVE_MIX if nerves is None else nerves)
    slots = _check_schedule(schedule)
    times = _check_time_columns(time_columns)
    start = _check_date("start_date", start_date)
    end = _check_date("end_date", end_date)
    span = int(end - start)
    if span < 0:
        raise ValueError(f"end_date {end_date!r} is before start_date {start_date!r}")
    if probs["p_retreat"] > 0 and span < _RETREAT_GAP_DAYS[1]:
        raise ValueError(
            f"start_date to end_date spans {span} days; retreatments need at least "
            f"{_RETREAT_GAP_DAYS[1]}. Widen the range or set p_retreat=0."
        )

    rng, pop = np.random.default_rng(seed_used), _POPULATION

    # Patients and their index procedure.
    sex = np.where(rng.random(n) < pop["p_female"], "F", "M")
    age0 = np.rint(np.clip(rng.normal(pop["age_mean"], pop["age_sd"], n), *pop["age_range"]))
    diabetes = rng.random(n) < pop["p_diabetes"]
    smoker = rng.random(n) < pop["p_smoker"]
    bmi = np.round(np.clip(rng.normal(pop["bmi_mean"], pop["bmi_sd"], n), *pop["bmi_range"]), 1)
    names = list(mix)
    lateral = np.array([name not in _MIDLINE_NERVES for name in names])
    weight = np.array(list(mix.values())) / (1 + probs["p_bilateral"] * lateral)
    nerve = rng.choice(len(names), size=n, p=weight / weight.sum())
    midline = ~lateral[nerve]
    bilateral = ~midline & (rng.random(n) < probs["p_bilateral"])
    side_code = np.where(midline, 2, (rng.random(n) < 0.5).astype(np.int64))  # 0 left, 1 right
    retreat = rng.random(n) < probs["p_retreat"]
    gap = np.where(retreat, rng.integers(_RETREAT_GAP_DAYS[0], _RETREAT_GAP_DAYS[1] + 1, n), 0)
    first_day = start + rng.integers(0, span - gap + 1)
    birth_year = (_year(first_day) - age0).astype(np.int64)
    medians = np.array([NERVE_DISTANCES[name][0] for name in names])[nerve]
    sd_dist = np.array([NERVE_DISTANCES[name][1] for name in names])[nerve]
    distance_lr = np.maximum(
        1, np.rint(medians[:, None] * np.exp(sd_dist[:, None] * rng.standard_normal((n, 2))))
    ).astype(np.int64)  # per patient and side (left, right); a retreatment freezes the same site

    # Procedures (index + retreatments), ordered by patient then date.
    again = np.flatnonzero(retreat)
    proc_patient = np.concatenate([np.arange(n), again])
    proc_day = np.concatenate([first_day, first_day[again] + gap[again]])
    never = np.iinfo(np.int64).max  # day of the next procedure on the same sides
    proc_next = np.concatenate([np.where(retreat, gap, never), np.full(again.size, never)])
    order = np.lexsort((proc_day, proc_patient))
    proc_patient, proc_day, proc_next = proc_patient[order], proc_day[order], proc_next[order]
    n_proc = proc_patient.size
    decompression = rng.random(n_proc) < probs["p_decompression"]
    per_proc = 1 + bilateral[proc_patient].astype(np.int64)

    # Treatments: one per procedure and side.
    t_proc = np.repeat(np.arange(n_proc), per_proc)
    first_treat = np.cumsum(per_proc) - per_proc
    t_offset = np.arange(t_proc.size) - first_treat[t_proc]
    t_patient = proc_patient[t_proc]
    t_side = np.where(bilateral[t_patient], t_offset, side_code[t_patient])
    t_distance = distance_lr[t_patient, np.minimum(t_side, 1)]
    t_day = proc_day[t_proc]
    t_age = _year(t_day) - birth_year[t_patient]
    n_treat = t_proc.size
    log_v = (
        math.log(v_ref)
        + math.log(ratios["age_velocity_ratio_per_decade"]) * (t_age - _REFERENCE_AGE) / 10
        + math.log(ratios["diabetes_velocity_ratio"]) * diabetes[t_patient]
        + math.log(ratios["smoker_velocity_ratio"]) * smoker[t_patient]
        + sd_log * rng.standard_normal(n_treat)
    )
    velocity = np.exp(log_v)
    recovery = lag + t_distance / velocity
    responder = rng.random(n_treat) < probs["p_response"]
    extra = rng.gamma(_RELIEF_EXTENSION_SHAPE, extension / _RELIEF_EXTENSION_SHAPE, n_treat)
    relief_end = np.where(responder, recovery + extra, np.nan)
    bp = _BASELINE_PAIN
    baseline = np.rint(np.clip(rng.normal(pain_mean, pain_sd, n_treat), bp["min"], bp["max"]))
    relief_fraction = rng.uniform(*_RELIEVED_PAIN_FRACTION, n_treat)
    headache_base = rng.uniform(8, 24, n_treat)

    # Visits, drawn per procedure (both sides are assessed at the same visit).
    days, keep = _visit_days(rng, n_proc, slots, jitter, probs["p_missed"])
    yearly = probs["dropout_per_year"]
    rate = -math.log1p(-yearly) / 365.25 if yearly < 1 else math.inf  # per day
    dropout = rng.exponential(1 / rate, n_proc) if rate > 0 else np.full(n_proc, np.inf)
    keep &= (days <= 0) | ((days <= dropout[:, None]) & (days < proc_next[:, None]))
    v_proc, v_slot = np.nonzero(keep)
    v_day = days[v_proc, v_slot]
    reps = per_proc[v_proc]
    v_treat = np.repeat(first_treat[v_proc], reps)
    v_treat += np.arange(v_treat.size) - np.repeat(np.cumsum(reps) - reps, reps)
    v_day = np.repeat(v_day, reps)
    sort = np.argsort(v_treat, kind="stable")
    v_treat, v_day = v_treat[sort], v_day[sort]
    n_visits = v_treat.size

    # Outcomes at each visit.
    post = v_day >= 1
    numb = post & (v_day < recovery[v_treat])
    numb ^= post & (rng.random(n_visits) < probs["p_misclassified"])
    fraction_left = np.clip(1 - v_day / recovery[v_treat], 0, 1)
    numbness = np.where(
        numb,
        np.clip(np.rint(2 + 7 * fraction_left + rng.normal(0, 1, n_visits)), 1, 10),
        post * np.clip(np.rint(np.abs(rng.normal(0, 0.4, n_visits))), 0, 1),
    )
    b = baseline[v_treat]
    cap = np.floor(_RELIEF_THRESHOLD * b)  # relieved <=> pain <= cap
    end_v = relief_end[v_treat]
    relieved = post & responder[v_treat] & (v_day < end_v)
    after = np.where(responder[v_treat], v_day - end_v, np.inf)  # days since relief ended
    back = b * (1 - 0.4 * np.exp(-after / 30))  # pain creeps back after relief
    noise = rng.normal(0, noise_sd, n_visits)
    pain_mean_v = np.where(relieved, relief_fraction[v_treat] * b,
                           np.where(responder[v_treat], back, 0.9 * b))
    pain = np.where(
        ~post,
        b,
        np.clip(np.rint(pain_mean_v + noise), 0, 10) if crosses else np.where(
            relieved,
            np.clip(np.rint(pain_mean_v + noise), 0, cap),
            np.clip(np.rint(pain_mean_v + noise), cap + 1, 10),
        ),
    )
    occipital = np.isin(nerve[t_patient], [i for i, x in enumerate(names) if x in _HEADACHE_NERVES])
    hmean = headache_base[v_treat] * np.where(relieved, 0.35, 1.0)
    headache = np.clip(np.rint(hmean + rng.normal(0, 1.5, n_visits)), 0, 31)

    # Tables.
    patient_ids = _ids("P", n, 5)
    treatment_ids = _ids("T", n_treat, 6)
    sides = np.array(["left", "right", "midline"])[t_side]
    nerve_names = np.array(names)[nerve[t_patient]]
    procedure = np.where(decompression[t_proc], "cryo_with_decompression", "cryo")
    patients = pd.DataFrame({
        "patient_id": patient_ids, "sex": sex, "birth_year": birth_year,
        "diabetes": diabetes, "smoker": smoker, "bmi": bmi,
    })
    treatments = pd.DataFrame({
        "treatment_id": treatment_ids, "patient_id": patient_ids[t_patient], "nerve": nerve_names,
        "side": sides, "treated_on": _dates(t_day), "procedure": procedure,
        "distance_mm": t_distance,
    })
    visit_columns: dict[str, Any] = {"treatment_id": pd.Series(treatment_ids).array.take(v_treat)}
    if "day" in times:
        visit_columns["day"] = v_day
    if "visit_date" in times:
        visit_columns["visit_date"] = _dates(t_day[v_treat] + v_day)
    visit_columns.update({
        "numb": numb, "numbness": numbness.astype(np.int64), "pain": pain.astype(np.int64),
        "headache_days": pd.arrays.IntegerArray(headache.astype(np.int64), ~occipital[v_treat]),
    })
    visits = pd.DataFrame(visit_columns)
    events = pd.DataFrame({
        "patient_id": patient_ids[t_patient], "treatment_id": treatment_ids, "nerve": nerve_names,
        "side": sides, "distance_mm": t_distance, "age": t_age.astype(np.int64),
        "diabetes": diabetes[t_patient], "velocity_mm_per_day": velocity,
        "recovery_day": recovery, "responder": responder, "relief_end_day": relief_end,
        "baseline_pain": baseline.astype(np.int64), "smoker": smoker[t_patient],
        "procedure": procedure,
    })
    truth: dict[str, Any] = {
        "n_patients": n, "seed": seed_used,
        "velocity_mm_per_day": v_ref, "velocity_sd_log": sd_log, "lag_days": lag,
        "reference_age": _REFERENCE_AGE, **ratios,
        "nerves": mix,
        "nerve_distances": {
            k: {"median_mm": m, "sd_log": s} for k, (m, s) in NERVE_DISTANCES.items()
        },
        "midline_nerves": list(_MIDLINE_NERVES), "headache_nerves": list(_HEADACHE_NERVES),
        **probs,
        "retreat_gap_days": list(_RETREAT_GAP_DAYS), "schedule": slots, "jitter_days": jitter,
        "baseline_window_days": list(_BASELINE_WINDOW_DAYS),
        "relief_extension_days": extension, "relief_extension_shape": _RELIEF_EXTENSION_SHAPE,
        "relief_threshold": _RELIEF_THRESHOLD,
        "relieved_pain_fraction": list(_RELIEVED_PAIN_FRACTION),
        "baseline_pain": {**_BASELINE_PAIN, "mean": pain_mean, "sd": pain_sd},
        "baseline_pain_mean": pain_mean, "baseline_pain_sd": pain_sd,
        "pain_noise_sd": noise_sd, "pain_noise_crosses": crosses,
        "population": dict(_POPULATION),
        "procedure_effect": "none", "time_columns": list(times),
        "start_date": str(start.astype("datetime64[D]")),
        "end_date": str(end.astype("datetime64[D]")),
    }
    return SimulatedCohort(patients, treatments, visits, truth, events)


def _visit_days(
    rng: np.random.Generator, n_proc: int, slots: list[int], jitter: int, p_missed: float
) -> tuple[np.ndarray, np.ndarray]:
    """Visit days (baseline first) and the kept mask, one row per procedure."""
    low_b, high_b = _BASELINE_WINDOW_DAYS
    days = np.empty((n_proc, len(slots) + 1), dtype=np.int64)
    days[:, 0] = rng.integers(low_b, high_b + 1, n_proc)
    for k, nominal in enumerate(slots):
        # Disjoint windows: a visit never reaches day 0 or a neighbour's window.
        low = max(1, nominal - jitter, (slots[k - 1] + nominal) // 2 + 1 if k else 1)
        high = nominal + jitter
        if k + 1 < len(slots):
            high = min(high, (nominal + slots[k + 1]) // 2)
        days[:, k + 1] = np.clip(nominal + rng.integers(-jitter, jitter + 1, n_proc), low, high)
    keep = np.ones(days.shape, dtype=bool)
    keep[:, 1:] = rng.random((n_proc, len(slots))) >= p_missed
    return days, keep


def _year(day_number: np.ndarray) -> np.ndarray:
    """Calendar year of days counted from 1970-01-01."""
    years = np.asarray(day_number).astype("datetime64[D]").astype("datetime64[Y]")
    return years.astype(np.int64) + 1970


def _dates(day_number: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(day_number, dtype=np.int64).astype("datetime64[D]"))


def _ids(prefix: str, count: int, width: int) -> np.ndarray:
    digits = np.arange(1, count + 1).astype(str)
    return np.char.add(prefix, np.char.zfill(digits, max(width, len(str(count)))))


def _check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None,
    low_open: bool = False, integer: bool = False,
) -> Any:
    kind = "a whole number" if integer else "a number"
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    result = int(value) if integer else float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (result < low or (low_open and result == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and result > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value!r}")
    return result


def _check_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    return _check_number("seed", seed, low=0, integer=True)


def _check_nerves(nerves: Any) -> dict[str, float]:
    if not isinstance(nerves, Mapping):
        raise TypeError(f"nerves must map nerve names to shares, got {type(nerves).__name__}")
    unknown = [name for name in nerves if name not in NERVE_DISTANCES]
    if unknown:
        raise ValueError(
            f"nerves: no distance table for {unknown}; use names from {', '.join(NERVE_DISTANCES)}"
        )
    shares = {str(name): _check_number(f"nerves[{name!r}]", v, low=0) for name, v in nerves.items()}
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("nerves: the shares must sum to more than 0")
    return {name: share / total for name, share in shares.items()}


def _check_schedule(schedule: Any) -> list[int]:
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence | np.ndarray):
        raise TypeError(f"schedule must be a sequence of days, got {type(schedule).__name__}")
    days = [_check_number("schedule day", day, low=1, integer=True) for day in schedule]
    if not days or any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise ValueError(f"schedule must be non-empty, strictly increasing; got {list(schedule)!r}")
    return days


def _check_time_columns(time_columns: Any) -> tuple[str, ...]:
    if isinstance(time_columns, str):
        time_columns = (time_columns,)
    if not isinstance(time_columns, Sequence):
        raise TypeError(f"time_columns must be a sequence of column names, got {time_columns!r}")
    columns = tuple(time_columns)
    valid = set(columns) <= {"day", "visit_date"} and len(set(columns)) == len(columns)
    if not columns or not valid:
        raise ValueError(
            f"time_columns must name 'day', 'visit_date' or both, once each; got {time_columns!r}"
        )
    return tuple(c for c in ("day", "visit_date") if c in columns)


def _check_date(name: str, value: Any) -> np.int64:
    if not isinstance(value, str | _dt.date | np.datetime64):
        raise TypeError(f"{name} must be an ISO date text or a date, got {type(value).__name__}")
    try:
        day = np.datetime64(pd.Timestamp(value).date(), "D")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} must be an ISO date like 2021-01-01, got {value!r}") from error
    return day.astype(np.int64)
