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
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regen.simulate.settings import (
    BASELINE_PAIN,
    DEFAULT_NERVE_MIX,
    NERVE_DISTANCES,
    RETREAT_GAP_DAYS,
    Settings,
    check_settings,
)

__all__ = ["DEFAULT_NERVE_MIX", "NERVE_DISTANCES", "SimulatedCohort", "cohort", "example"]

_MIDLINE_NERVES = ("third_occipital",)
_HEADACHE_NERVES = ("greater_occipital", "lesser_occipital", "third_occipital")
_REFERENCE_AGE = 50
_BASELINE_WINDOW_DAYS = (-14, 0)
_RELIEF_THRESHOLD = 0.5
_RELIEF_EXTENSION_SHAPE = 2.0
_RELIEVED_PAIN_FRACTION = (0.25, 0.35)
_POPULATION = {
    "p_female": 0.6, "age_mean": 52.0, "age_sd": 13.0, "age_range": [25, 85],
    "p_diabetes": 0.15, "p_smoker": 0.2, "bmi_mean": 27.0, "bmi_sd": 5.0, "bmi_range": [16, 50],
}
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
        ['.regen-manifest.json', 'patients.csv', 'treatments.csv', 'visits.csv']
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
    settings = check_settings(dict(locals()))
    # One random stream: the order of these calls fixes the cohort drawn for a seed.
    rng = np.random.default_rng(settings.seed)
    patients = _patients(rng, settings)
    procedures = _procedures(rng, settings, patients)
    treatments = _treatments(patients, procedures)
    latent = _latent(rng, settings, patients, treatments)
    visits = _visits(rng, settings, procedures)
    numb, numbness = _numbness(rng, settings, latent, visits)
    pain, headache = _pain(rng, settings, latent, visits)
    outcomes = _Outcomes(numb, numbness, pain, headache)
    patient_table, treatment_table, visit_table, events = _tables(
        settings, patients, procedures, treatments, latent, visits, outcomes
    )
    return SimulatedCohort(patient_table, treatment_table, visit_table, _truth(settings), events)


@dataclass(frozen=True, eq=False)
class _Patients:
    """One row per patient: covariates, the nerve (index into ``settings.nerves``) and sides
    treated, the retreatment gap (0 if none), the first treatment day and the distances."""

    sex: np.ndarray
    birth_year: np.ndarray
    diabetes: np.ndarray
    smoker: np.ndarray
    bmi: np.ndarray
    nerve: np.ndarray
    bilateral: np.ndarray
    side_code: np.ndarray  # 0 left, 1 right, 2 midline (for a unilateral or midline nerve)
    retreat: np.ndarray
    gap: np.ndarray
    first_day: np.ndarray
    distance_lr: np.ndarray  # mm, per side (left, right); a retreatment freezes the same site


def _patients(rng: np.random.Generator, settings: Settings) -> _Patients:
    """Draw the patients and their index procedure."""
    n, pop, probs, names = settings.n_patients, _POPULATION, settings.probabilities, list(settings.nerves)
    sex = np.where(rng.random(n) < pop["p_female"], "F", "M")
    age0 = np.rint(np.clip(rng.normal(pop["age_mean"], pop["age_sd"], n), *pop["age_range"]))
    diabetes = rng.random(n) < pop["p_diabetes"]
    smoker = rng.random(n) < pop["p_smoker"]
    bmi = np.round(np.clip(rng.normal(pop["bmi_mean"], pop["bmi_sd"], n), *pop["bmi_range"]), 1)
    lateral = np.array([name not in _MIDLINE_NERVES for name in names])
    weight = np.array(list(settings.nerves.values())) / (1 + probs["p_bilateral"] * lateral)
    nerve = rng.choice(len(names), size=n, p=weight / weight.sum())
    midline = ~lateral[nerve]
    bilateral = ~midline & (rng.random(n) < probs["p_bilateral"])
    side_code = np.where(midline, 2, (rng.random(n) < 0.5).astype(np.int64))
    retreat = rng.random(n) < probs["p_retreat"]
    gap = np.where(retreat, rng.integers(RETREAT_GAP_DAYS[0], RETREAT_GAP_DAYS[1] + 1, n), 0)
    first_day = settings.start + rng.integers(0, settings.span_days - gap + 1)
    birth_year = (_year(first_day) - age0).astype(np.int64)
    medians = np.array([NERVE_DISTANCES[name][0] for name in names])[nerve]
    sd_dist = np.array([NERVE_DISTANCES[name][1] for name in names])[nerve]
    distance_lr = np.maximum(
        1, np.rint(medians[:, None] * np.exp(sd_dist[:, None] * rng.standard_normal((n, 2))))
    ).astype(np.int64)
    return _Patients(sex, birth_year, diabetes, smoker, bmi, nerve, bilateral, side_code, retreat,
                     gap, first_day, distance_lr)


@dataclass(frozen=True, eq=False)
class _Procedures:
    """One row per procedure (index and retreatments), ordered by patient then date."""

    patient: np.ndarray
    day: np.ndarray
    next_day: np.ndarray  # days from this procedure to the next on the same sides (int64 max: none)
    decompression: np.ndarray
    sides: np.ndarray  # treatments per procedure: 1, or 2 if bilateral
    first_treatment: np.ndarray  # row of the procedure's first treatment


def _procedures(rng: np.random.Generator, settings: Settings, patients: _Patients) -> _Procedures:
    """Lay out the procedures and draw which include a decompression."""
    retreat, gap, first_day = patients.retreat, patients.gap, patients.first_day
    again = np.flatnonzero(retreat)
    patient = np.concatenate([np.arange(settings.n_patients), again])
    day = np.concatenate([first_day, first_day[again] + gap[again]])
    never = np.iinfo(np.int64).max
    next_day = np.concatenate([np.where(retreat, gap, never), np.full(again.size, never)])
    order = np.lexsort((day, patient))
    patient, day, next_day = patient[order], day[order], next_day[order]
    decompression = rng.random(patient.size) < settings.probabilities["p_decompression"]
    sides = 1 + patients.bilateral[patient].astype(np.int64)
    return _Procedures(patient, day, next_day, decompression, sides, np.cumsum(sides) - sides)


@dataclass(frozen=True, eq=False)
class _Treatments:
    """One row per procedure and side."""

    procedure: np.ndarray
    patient: np.ndarray
    side: np.ndarray  # 0 left, 1 right, 2 midline
    nerve: np.ndarray  # index into settings.nerves
    distance: np.ndarray
    day: np.ndarray
    age: np.ndarray


def _treatments(patients: _Patients, procedures: _Procedures) -> _Treatments:
    """Expand the procedures into treatments (no random draws)."""
    procedure = np.repeat(np.arange(procedures.patient.size), procedures.sides)
    offset = np.arange(procedure.size) - procedures.first_treatment[procedure]
    patient = procedures.patient[procedure]
    side = np.where(patients.bilateral[patient], offset, patients.side_code[patient])
    distance = patients.distance_lr[patient, np.minimum(side, 1)]
    day = procedures.day[procedure]
    age = _year(day) - patients.birth_year[patient]
    return _Treatments(procedure, patient, side, patients.nerve[patient], distance, day, age)


@dataclass(frozen=True, eq=False)
class _Latent:
    """The latent truth of each treatment (the model in the module docstring)."""

    velocity: np.ndarray
    recovery: np.ndarray
    responder: np.ndarray
    relief_end: np.ndarray  # NaN for non-responders
    baseline: np.ndarray
    relief_fraction: np.ndarray  # relieved pain as a fraction of baseline
    headache_base: np.ndarray  # headache days a month without relief


def _latent(rng: np.random.Generator, settings: Settings, patients: _Patients,
            treatments: _Treatments) -> _Latent:
    """Draw each treatment's velocity, recovery, response, relief and baseline pain."""
    n_treat, ratios = treatments.procedure.size, settings.ratios
    log_v = (
        math.log(settings.velocity_mm_per_day)
        + math.log(ratios["age_velocity_ratio_per_decade"]) * (treatments.age - _REFERENCE_AGE) / 10
        + math.log(ratios["diabetes_velocity_ratio"]) * patients.diabetes[treatments.patient]
        + math.log(ratios["smoker_velocity_ratio"]) * patients.smoker[treatments.patient]
        + settings.velocity_sd_log * rng.standard_normal(n_treat)
    )
    velocity = np.exp(log_v)
    recovery = settings.lag_days + treatments.distance / velocity
    responder = rng.random(n_treat) < settings.probabilities["p_response"]
    scale = settings.relief_extension_days / _RELIEF_EXTENSION_SHAPE
    extra = rng.gamma(_RELIEF_EXTENSION_SHAPE, scale, n_treat)
    relief_end = np.where(responder, recovery + extra, np.nan)
    bp = BASELINE_PAIN
    drawn = rng.normal(settings.baseline_pain_mean, settings.baseline_pain_sd, n_treat)
    baseline = np.rint(np.clip(drawn, bp["min"], bp["max"]))
    relief_fraction = rng.uniform(*_RELIEVED_PAIN_FRACTION, n_treat)
    headache_base = rng.uniform(8, 24, n_treat)
    return _Latent(velocity, recovery, responder, relief_end, baseline, relief_fraction,
                   headache_base)


@dataclass(frozen=True, eq=False)
class _Visits:
    """One row per kept visit and treatment, ordered by treatment then day."""

    treatment: np.ndarray
    day: np.ndarray  # days since the treatment, <= 0 at baseline


def _visits(rng: np.random.Generator, settings: Settings, procedures: _Procedures) -> _Visits:
    """Draw visits per procedure (both sides are assessed at the same visit), then dropout."""
    n_proc, probs = procedures.patient.size, settings.probabilities
    days, keep = _visit_days(rng, n_proc, settings.schedule, settings.jitter_days, probs["p_missed"])
    yearly = probs["dropout_per_year"]
    rate = -math.log1p(-yearly) / 365.25 if yearly < 1 else math.inf  # per day
    dropout = rng.exponential(1 / rate, n_proc) if rate > 0 else np.full(n_proc, np.inf)
    keep &= (days <= 0) | ((days <= dropout[:, None]) & (days < procedures.next_day[:, None]))
    v_proc, v_slot = np.nonzero(keep)
    reps = procedures.sides[v_proc]
    treatment = np.repeat(procedures.first_treatment[v_proc], reps)
    treatment += np.arange(treatment.size) - np.repeat(np.cumsum(reps) - reps, reps)
    day = np.repeat(days[v_proc, v_slot], reps)
    sort = np.argsort(treatment, kind="stable")
    return _Visits(treatment[sort], day[sort])


def _numbness(rng: np.random.Generator, settings: Settings, latent: _Latent,
              visits: _Visits) -> tuple[np.ndarray, np.ndarray]:
    """Draw the ``numb`` flag (flipped with ``p_misclassified``) and numbness score per visit."""
    n_visits, day = visits.treatment.size, visits.day
    recovery = latent.recovery[visits.treatment]
    post = day >= 1
    numb = post & (day < recovery)
    numb ^= post & (rng.random(n_visits) < settings.probabilities["p_misclassified"])
    fraction_left = np.clip(1 - day / recovery, 0, 1)
    numbness = np.where(
        numb,
        np.clip(np.rint(2 + 7 * fraction_left + rng.normal(0, 1, n_visits)), 1, 10),
        post * np.clip(np.rint(np.abs(rng.normal(0, 0.4, n_visits))), 0, 1),
    )
    return numb, numbness


def _pain(rng: np.random.Generator, settings: Settings, latent: _Latent,
          visits: _Visits) -> tuple[np.ndarray, np.ndarray]:
    """Draw the pain score and headache days per visit; relieved exactly when pain <= cap
    unless ``pain_noise_crosses``."""
    n_visits, day, treatment = visits.treatment.size, visits.day, visits.treatment
    post = day >= 1
    b = latent.baseline[treatment]
    cap = np.floor(_RELIEF_THRESHOLD * b)  # relieved <=> pain <= cap
    end = latent.relief_end[treatment]
    responder = latent.responder[treatment]
    relieved = post & responder & (day < end)
    after = np.where(responder, day - end, np.inf)  # days since relief ended
    back = b * (1 - 0.4 * np.exp(-after / 30))  # pain creeps back after relief
    noise = rng.normal(0, settings.pain_noise_sd, n_visits)
    mean = np.where(relieved, latent.relief_fraction[treatment] * b,
                    np.where(responder, back, 0.9 * b))
    pain = np.where(
        ~post,
        b,
        np.clip(np.rint(mean + noise), 0, 10) if settings.pain_noise_crosses else np.where(
            relieved,
            np.clip(np.rint(mean + noise), 0, cap),
            np.clip(np.rint(mean + noise), cap + 1, 10),
        ),
    )
    hmean = latent.headache_base[treatment] * np.where(relieved, 0.35, 1.0)
    headache = np.clip(np.rint(hmean + rng.normal(0, 1.5, n_visits)), 0, 31)
    return pain, headache


@dataclass(frozen=True, eq=False)
class _Outcomes:
    """What is recorded at each visit (rows of :class:`_Visits`)."""

    numb: np.ndarray
    numbness: np.ndarray
    pain: np.ndarray
    headache: np.ndarray  # recorded for headache nerves only


def _tables(
    settings: Settings, patients: _Patients, procedures: _Procedures, treatments: _Treatments,
    latent: _Latent, visits: _Visits, outcomes: _Outcomes,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The patients, treatments and visits tables, and the events (no random draws)."""
    names = list(settings.nerves)
    patient_ids = _ids("P", settings.n_patients, 5)
    treatment_ids = _ids("T", treatments.procedure.size, 6)
    t_patient_ids = patient_ids[treatments.patient]
    sides = np.array(["left", "right", "midline"])[treatments.side]
    nerve_names = np.array(names)[treatments.nerve]
    procedure = np.where(procedures.decompression[treatments.procedure], "cryo_with_decompression",
                         "cryo")
    patient_table = pd.DataFrame({
        "patient_id": patient_ids, "sex": patients.sex, "birth_year": patients.birth_year,
        "diabetes": patients.diabetes, "smoker": patients.smoker, "bmi": patients.bmi,
    })
    treatment_table = pd.DataFrame({
        "treatment_id": treatment_ids, "patient_id": t_patient_ids, "nerve": nerve_names,
        "side": sides, "treated_on": _dates(treatments.day), "procedure": procedure,
        "distance_mm": treatments.distance,
    })
    visit_columns: dict[str, Any] = {
        "treatment_id": pd.Series(treatment_ids).array.take(visits.treatment)
    }
    if "day" in settings.time_columns:
        visit_columns["day"] = visits.day
    if "visit_date" in settings.time_columns:
        visit_columns["visit_date"] = _dates(treatments.day[visits.treatment] + visits.day)
    headache_nerves = [i for i, name in enumerate(names) if name in _HEADACHE_NERVES]
    occipital = np.isin(treatments.nerve, headache_nerves)
    visit_columns.update({
        "numb": outcomes.numb, "numbness": outcomes.numbness.astype(np.int64),
        "pain": outcomes.pain.astype(np.int64),
        "headache_days": pd.arrays.IntegerArray(outcomes.headache.astype(np.int64),
                                                ~occipital[visits.treatment]),
    })
    events = pd.DataFrame({
        "patient_id": t_patient_ids, "treatment_id": treatment_ids, "nerve": nerve_names,
        "side": sides, "distance_mm": treatments.distance, "age": treatments.age.astype(np.int64),
        "diabetes": patients.diabetes[treatments.patient],
        "velocity_mm_per_day": latent.velocity, "recovery_day": latent.recovery,
        "responder": latent.responder, "relief_end_day": latent.relief_end,
        "baseline_pain": latent.baseline.astype(np.int64),
        "smoker": patients.smoker[treatments.patient], "procedure": procedure,
    })
    return patient_table, treatment_table, pd.DataFrame(visit_columns), events


def _truth(settings: Settings) -> dict[str, Any]:
    """Every parameter used, JSON-serialisable (``SimulatedCohort.truth``)."""
    pain_mean, pain_sd = settings.baseline_pain_mean, settings.baseline_pain_sd
    return {
        "n_patients": settings.n_patients, "seed": settings.seed,
        "velocity_mm_per_day": settings.velocity_mm_per_day,
        "velocity_sd_log": settings.velocity_sd_log, "lag_days": settings.lag_days,
        "reference_age": _REFERENCE_AGE, **settings.ratios,
        "nerves": dict(settings.nerves),
        "nerve_distances": {
            k: {"median_mm": m, "sd_log": s} for k, (m, s) in NERVE_DISTANCES.items()
        },
        "midline_nerves": list(_MIDLINE_NERVES), "headache_nerves": list(_HEADACHE_NERVES),
        **settings.probabilities,
        "retreat_gap_days": list(RETREAT_GAP_DAYS), "schedule": list(settings.schedule),
        "jitter_days": settings.jitter_days,
        "baseline_window_days": list(_BASELINE_WINDOW_DAYS),
        "relief_extension_days": settings.relief_extension_days,
        "relief_extension_shape": _RELIEF_EXTENSION_SHAPE,
        "relief_threshold": _RELIEF_THRESHOLD,
        "relieved_pain_fraction": list(_RELIEVED_PAIN_FRACTION),
        "baseline_pain": {**BASELINE_PAIN, "mean": pain_mean, "sd": pain_sd},
        "baseline_pain_mean": pain_mean, "baseline_pain_sd": pain_sd,
        "pain_noise_sd": settings.pain_noise_sd, "pain_noise_crosses": settings.pain_noise_crosses,
        "population": dict(_POPULATION),
        "procedure_effect": "none", "time_columns": list(settings.time_columns),
        "start_date": str(settings.start.astype("datetime64[D]")),
        "end_date": str(settings.end.astype("datetime64[D]")),
    }


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


def example() -> SimulatedCohort:
    """The example cohort: 300 simulated patients, seed 2026, every other setting at its
    default. Written out, its files are byte for byte the repository's ``data/example``,
    so ``regen demo`` can run anywhere regen is installed.

    Examples
    --------
    >>> from regen.simulate import example
    >>> example()
    SimulatedCohort(patients=300, treatments=465, visits=3536, seed=2026)
    """
    return cohort(300, seed=2026)
