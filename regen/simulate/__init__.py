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
freeze site to the territory, :math:`n_i` earlier treatments of the nerve and side
plus one)::

    log v_i = log v_ref + log(r_age) (a_i - 50) / 10 + log(r_dm) D_j
              + log(r_smk) S_j + log(r_re) (n_i - 1)
              + b_j + sigma_v eps_i,         b_j ~ N(0, sigma_p^2), eps_i ~ N(0, 1)
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
                   of one patient
sigma_p, b_j       SD and value of the patient effect, shared by   ``patient_sd_log``,
                   all of patient j's treatments (a frailty)       ``patient_effect``
n_i, r_re          treatment number (1: the index treatment) and   ``treatment_number``,
                   velocity ratio per earlier treatment            ``retreatment_velocity_ratio``
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
and, at a retreatment of the same nerve and sides, the end of the earlier
treatment's visits (none on or after the retreatment's day). Relieved pain is about
25-35 % of baseline, with visit-to-visit noise (SD ``pain_noise_sd``); by
default the noise is clipped so that it never crosses the 50 % line, hence relief
and numbness episodes are exactly derivable from the truth (with the default
``p_misclassified=0``). With ``pain_noise_crosses=True`` it is not: a relieved
visit can score above the line and an unrelieved one below it, as real pain
scores do (see ``docs/episodes.md``). The procedure (decompression or not)
has no effect in the truth: a null covariate for the models to find null.

Retreatment
-----------
``retreat="random"``: with ``p_retreat``, a patient's index procedure is done
again once, 90-300 days later, whatever its relief; each procedure has its own
exponential dropout time. ``retreat="on_relief_end"``: the practice retreats
when pain comes back. When every side of a procedure responded and a kept visit
(not missed, before dropout) falls on or after relief ended (the later E_i of
the sides), the next procedure on the same nerve, sides and site is 1 to
``retreat_delay_days`` days (uniform) after the first such visit, so the visit
that saw relief end stays in the earlier treatment's follow-up; the new
baseline visit is not before it. Chains stop at ``max_treatments`` procedures,
at ``end_date``, at dropout (one exponential time per patient from the index
day: memoryless, so the same law as one per procedure), and at a procedure that
some side did not respond to or whose end of relief no kept visit saw.

The patient effects come from a random stream of their own (seeded by
``[seed, 1]``, standard normals times ``patient_sd_log``): ``patient_sd_log=0``
leaves every cohort as it was, and cohorts that differ only in
``patient_sd_log`` share every other draw (with ``"random"``, identical
patients and treatments tables). With ``"on_relief_end"`` each round of
procedures (every patient's r-th) is drawn for all patients, so a patient's
draws do not depend on the other patients' chains.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from regen.simulate.result import SimulatedCohort
from regen.simulate.settings import (
    BASELINE_PAIN,
    BASELINE_WINDOW_DAYS,
    DEFAULT_NERVE_MIX,
    DEFAULT_P_RETREAT,
    HEADACHE_NERVES,
    MIDLINE_NERVES,
    NERVE_DISTANCES,
    POPULATION,
    REFERENCE_AGE,
    RELIEF_EXTENSION_SHAPE,
    RELIEF_THRESHOLD,
    RELIEVED_PAIN_FRACTION,
    RETREAT_GAP_DAYS,
    Settings,
    check_settings,
    scheduled_visits,
)
from regen.simulate.trial import trial

__all__ = ["DEFAULT_NERVE_MIX", "NERVE_DISTANCES", "SimulatedCohort", "cohort", "example",
           "trial"]

_NEVER = np.iinfo(np.int64).max  # days to the next procedure when there is none


def cohort(
    n_patients: int,
    *,
    seed: int | None = None,
    velocity_mm_per_day: float = 1.4,
    velocity_sd_log: float = 0.25,
    patient_sd_log: float = 0.0,
    lag_days: float = 10.0,
    age_velocity_ratio_per_decade: float = 0.93,
    diabetes_velocity_ratio: float = 0.8,
    smoker_velocity_ratio: float = 0.95,
    retreatment_velocity_ratio: float = 1.0,
    nerves: Mapping[str, float] | None = None,
    p_bilateral: float = 0.3,
    p_retreat: float = DEFAULT_P_RETREAT,
    retreat: str = "random",
    retreat_delay_days: int = 14,
    max_treatments: int = 5,
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
    sides: once 90-300 days later (``retreat="random"``), or each time relief is
    seen to end (``"on_relief_end"``). The model is in the module docstring.

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
        SD of log velocity between treated nerves of one patient (>= 0).
    patient_sd_log : float, default 0.0
        SD of a patient effect on log velocity shared by all of a patient's
        treatments (>= 0; ``events.patient_effect``). Drawn apart from everything
        else: 0 draws nothing, and with ``retreat="random"`` changing it changes only
        the velocities and what follows from them.
    lag_days : float, default 10.0
        Days before regrowth starts (Wallerian degeneration), >= 0.
    age_velocity_ratio_per_decade : float, default 0.93
        Multiplicative change of velocity per 10 years above age 50 (> 0).
    diabetes_velocity_ratio, smoker_velocity_ratio : float, default 0.8, 0.95
        Multiplicative change of velocity with diabetes / smoking (> 0).
    retreatment_velocity_ratio : float, default 1.0
        Multiplicative change of velocity per earlier treatment of the same nerve
        and side (> 0; no random draw).
    nerves : mapping of str to float, optional
        Expected share of treatments per nerve (normalised to sum 1; each
        patient is treated on one nerve, chosen so that bilateral treatments do
        not skew the shares); names from :data:`NERVE_DISTANCES`. Default
        :data:`DEFAULT_NERVE_MIX`.
    p_bilateral : float, default 0.3
        Probability that a lateral nerve is treated left and right together.
    p_retreat : float, default 0.2
        Probability of a retreatment of the same nerve and sides 90-300 days later,
        with ``retreat="random"`` only: any other value with ``"on_relief_end"``
        raises :class:`ValueError` (``max_treatments=1`` turns retreatment off).
    retreat : {"random", "on_relief_end"}, default "random"
        ``random``: retreat with ``p_retreat``. ``on_relief_end``: retreat a
        procedure every side of which responded, after the first kept visit on or
        after its relief ended (module docstring, Retreatment).
    retreat_delay_days : int, default 14
        ``on_relief_end``: the retreatment is 1 to this many days (uniform) after
        the visit that saw relief end (>= 1).
    max_treatments : int, default 5
        ``on_relief_end``: most procedures per patient, the index one included (>= 1).
    p_decompression : float, default 0.1
        Probability that a procedure is ``cryo_with_decompression`` (no effect).
    schedule : sequence of int, default (7, 30, 60, 90, 120, 180, 270, 365)
        Nominal follow-up days, strictly increasing and positive.
    jitter_days : int, default 3
        Uniform integer jitter of each visit, kept after day 0 and between neighbours.
    p_missed : float, default 0.1
        Probability that a scheduled visit is missed.
    dropout_per_year : float, default 0.15
        Probability of leaving follow-up within a year (exponential time, from
        each procedure; with ``on_relief_end``, from the patient's index procedure).
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
    effect = _patient_effects(settings)
    # One random stream: the order of these calls fixes the cohort drawn for a seed.
    rng = np.random.default_rng(settings.seed)
    patients = _patients(rng, settings)
    if settings.retreat == "random":
        procedures = _procedures(rng, settings, patients)
        treatments = _treatments(patients, procedures)
        draws = _latent_draws(rng, settings, treatments.procedure.size)
        latent = _latent(draws, settings, patients, treatments, effect)
        visits = _visits(rng, settings, procedures)
    else:
        procedures, treatments, latent, visits = _chains(rng, settings, patients, effect)
    numb, numbness = _numbness(rng, settings, latent, visits)
    pain, headache = _pain(rng, settings, latent, visits)
    outcomes = _Outcomes(numb, numbness, pain, headache)
    patient_table, treatment_table, visit_table, events = _tables(
        settings, patients, procedures, treatments, latent, visits, outcomes, effect
    )
    return SimulatedCohort(patient_table, treatment_table, visit_table, settings.truth(), events)


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
    n, pop, probs, names = settings.n_patients, POPULATION, settings.probabilities, list(settings.nerves)
    sex = np.where(rng.random(n) < pop["p_female"], "F", "M")
    age0 = np.rint(np.clip(rng.normal(pop["age_mean"], pop["age_sd"], n), *pop["age_range"]))
    diabetes = rng.random(n) < pop["p_diabetes"]
    smoker = rng.random(n) < pop["p_smoker"]
    bmi = np.round(np.clip(rng.normal(pop["bmi_mean"], pop["bmi_sd"], n), *pop["bmi_range"]), 1)
    lateral = np.array([name not in MIDLINE_NERVES for name in names])
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
    number: np.ndarray  # 1 for the index procedure, then 2, 3, ... (same nerve and sides)


def _procedures(rng: np.random.Generator, settings: Settings, patients: _Patients) -> _Procedures:
    """Lay out the procedures and draw which include a decompression."""
    retreat, gap, first_day = patients.retreat, patients.gap, patients.first_day
    again = np.flatnonzero(retreat)
    patient = np.concatenate([np.arange(settings.n_patients), again])
    day = np.concatenate([first_day, first_day[again] + gap[again]])
    next_day = np.concatenate([np.where(retreat, gap, _NEVER), np.full(again.size, _NEVER)])
    order = np.lexsort((day, patient))
    patient, day, next_day = patient[order], day[order], next_day[order]
    decompression = rng.random(patient.size) < settings.probabilities["p_decompression"]
    sides = 1 + patients.bilateral[patient].astype(np.int64)
    number = 1 + np.arange(patient.size) - np.searchsorted(patient, patient)
    return _Procedures(patient, day, next_day, decompression, sides, np.cumsum(sides) - sides,
                       number)


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
    number: np.ndarray  # treatment number of the patient, nerve and side: 1, 2, ...


def _treatments(patients: _Patients, procedures: _Procedures) -> _Treatments:
    """Expand the procedures into treatments (no random draws)."""
    procedure = np.repeat(np.arange(procedures.patient.size), procedures.sides)
    offset = np.arange(procedure.size) - procedures.first_treatment[procedure]
    patient = procedures.patient[procedure]
    side = np.where(patients.bilateral[patient], offset, patients.side_code[patient])
    distance = patients.distance_lr[patient, np.minimum(side, 1)]
    day = procedures.day[procedure]
    age = _year(day) - patients.birth_year[patient]
    return _Treatments(procedure, patient, side, patients.nerve[patient], distance, day, age,
                       procedures.number[procedure])


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


def _patient_effects(settings: Settings) -> np.ndarray:
    """b_j per patient, from a stream of its own: the main stream, hence every other draw,
    is the same whatever ``patient_sd_log``, and so are the standard normals behind b_j."""
    if settings.patient_sd_log == 0:
        return np.zeros(settings.n_patients)
    z = np.random.default_rng([settings.seed, 1]).standard_normal(settings.n_patients)
    return settings.patient_sd_log * z


def _latent_draws(rng: np.random.Generator, settings: Settings, n: int) -> dict[str, np.ndarray]:
    """The random numbers behind ``n`` treatments' latent values, in the stream's order."""
    scale = settings.relief_extension_days / RELIEF_EXTENSION_SHAPE
    return {  # a dict display is evaluated left to right: this is the order of the draws
        "eps": rng.standard_normal(n),
        "response": rng.random(n),
        "extra": rng.gamma(RELIEF_EXTENSION_SHAPE, scale, n),
        "baseline": rng.normal(settings.baseline_pain_mean, settings.baseline_pain_sd, n),
        "relief_fraction": rng.uniform(*RELIEVED_PAIN_FRACTION, n),
        "headache_base": rng.uniform(8, 24, n),
    }


def _latent(draws: Mapping[str, np.ndarray], settings: Settings, patients: _Patients,
            treatments: _Treatments, effect: np.ndarray) -> _Latent:
    """Each treatment's velocity, recovery, response, relief and baseline pain (no draws)."""
    ratios, patient = settings.ratios, treatments.patient
    log_v = (
        math.log(settings.velocity_mm_per_day)
        + math.log(ratios["age_velocity_ratio_per_decade"]) * (treatments.age - REFERENCE_AGE) / 10
        + math.log(ratios["diabetes_velocity_ratio"]) * patients.diabetes[patient]
        + math.log(ratios["smoker_velocity_ratio"]) * patients.smoker[patient]
        + settings.velocity_sd_log * draws["eps"]
        # both 0 at the defaults, and x + 0.0 is x: default cohorts are unchanged
        + effect[patient]
        + math.log(ratios["retreatment_velocity_ratio"]) * (treatments.number - 1)
    )
    velocity = np.exp(log_v)
    recovery = settings.lag_days + treatments.distance / velocity
    responder = draws["response"] < settings.probabilities["p_response"]
    relief_end = np.where(responder, recovery + draws["extra"], np.nan)
    bp = BASELINE_PAIN
    baseline = np.rint(np.clip(draws["baseline"], bp["min"], bp["max"]))
    return _Latent(velocity, recovery, responder, relief_end, baseline, draws["relief_fraction"],
                   draws["headache_base"])


@dataclass(frozen=True, eq=False)
class _Visits:
    """One row per kept visit and treatment, ordered by treatment then day."""

    treatment: np.ndarray
    day: np.ndarray  # days since the treatment, <= 0 at baseline


def _visits(rng: np.random.Generator, settings: Settings, procedures: _Procedures) -> _Visits:
    """Draw visits per procedure (both sides are assessed at the same visit), then dropout."""
    n_proc, probs = procedures.patient.size, settings.probabilities
    days, keep = _visit_days(rng, n_proc, settings.schedule, settings.jitter_days, probs["p_missed"])
    dropout = _dropout(rng, settings, n_proc)
    keep &= (days <= 0) | ((days <= dropout[:, None]) & (days < procedures.next_day[:, None]))
    return _expand_visits(procedures, days, keep)


def _dropout(rng: np.random.Generator, settings: Settings, n: int) -> np.ndarray:
    """Days to leaving follow-up, exponential (``inf`` without dropout)."""
    yearly = settings.probabilities["dropout_per_year"]
    rate = -math.log1p(-yearly) / 365.25 if yearly < 1 else math.inf  # per day
    return rng.exponential(1 / rate, n) if rate > 0 else np.full(n, np.inf)


def _expand_visits(procedures: _Procedures, days: np.ndarray, keep: np.ndarray) -> _Visits:
    """The kept visits (rows: procedures, columns: baseline then schedule) per treatment."""
    v_proc, v_slot = np.nonzero(keep)
    reps = procedures.sides[v_proc]
    treatment = np.repeat(procedures.first_treatment[v_proc], reps)
    treatment += np.arange(treatment.size) - np.repeat(np.cumsum(reps) - reps, reps)
    day = np.repeat(days[v_proc, v_slot], reps)
    sort = np.argsort(treatment, kind="stable")
    return _Visits(treatment[sort], day[sort])


@dataclass(frozen=True, eq=False)
class _Round:
    """Round r of ``retreat="on_relief_end"``: the r-th procedure of each patient still in a
    chain, its treatments, latent values and visits (rows: procedures; baseline, schedule)."""

    procedures: _Procedures
    treatments: _Treatments
    offset: np.ndarray  # a treatment's place in its procedure: 0, or 1 (right, if bilateral)
    latent: _Latent
    days: np.ndarray
    keep: np.ndarray
    delay: np.ndarray  # days from the visit that saw relief end to the next procedure


def _chains(rng: np.random.Generator, settings: Settings, patients: _Patients,
            effect: np.ndarray) -> tuple[_Procedures, _Treatments, _Latent, _Visits]:
    """Lay out ``retreat="on_relief_end"`` round by round (vectorised over patients): round r
    holds every patient's r-th procedure, whose relief ends and visits fix round r + 1."""
    n = settings.n_patients
    leaves = patients.first_day + _dropout(rng, settings, n)  # one dropout per patient
    who, day = np.arange(n), patients.first_day
    earliest = np.full(n, BASELINE_WINDOW_DAYS[0])  # earliest baseline day
    rounds = []
    for number in range(1, settings.max_treatments + 1):
        done = _round(rng, settings, patients, effect, leaves, (who, day, earliest), number)
        rounds.append(done)
        go = done.procedures.next_day != _NEVER
        if not go.any():
            break
        # a retreatment's baseline visit is not before the visit that saw relief end
        who, day, earliest = who[go], day[go] + done.procedures.next_day[go], -done.delay[go]
    return _assemble(patients, rounds)


def _round(rng: np.random.Generator, settings: Settings, patients: _Patients,
           effect: np.ndarray, leaves: np.ndarray,
           at: tuple[np.ndarray, np.ndarray, np.ndarray], number: int) -> _Round:
    """Procedure ``number`` of the patients ``at[0]`` on days ``at[1]``: its draws (made for
    every patient, so a patient's draws do not depend on the others' chains), latent values,
    visits, and the days to the next procedure."""
    who, day, earliest = at
    n, k, probs = settings.n_patients, who.size, settings.probabilities
    decompression = (rng.random(n) < probs["p_decompression"])[who]
    sides = 1 + patients.bilateral[who].astype(np.int64)
    first = np.cumsum(sides) - sides
    procedures = _Procedures(who, day, np.full(k, _NEVER), decompression, sides, first,
                             np.full(k, number))
    treatments = _treatments(patients, procedures)
    offset = np.arange(treatments.procedure.size) - first[treatments.procedure]
    pick = 2 * treatments.patient + offset
    draws = {key: value[pick] for key, value in _latent_draws(rng, settings, 2 * n).items()}
    latent = _latent(draws, settings, patients, treatments, effect)
    days, keep = _visit_days(rng, n, settings.schedule, settings.jitter_days, probs["p_missed"])
    days, keep = days[who], keep[who]
    days[:, 0] = np.maximum(days[:, 0], earliest)
    delay = rng.integers(1, settings.retreat_delay_days + 1, n)[who]
    # Relief over on every side (NaN if a side did not respond: no retreatment).
    end = np.maximum(latent.relief_end[first], latent.relief_end[first + sides - 1])
    stay = leaves[who] - day  # days from the procedure to leaving follow-up
    seen = keep & (days >= 1) & (days <= stay[:, None]) & (days >= end[:, None])
    gap = days[np.arange(k), seen.argmax(axis=1)] + delay
    go = (seen.any(axis=1) & (number < settings.max_treatments)
          & (day + gap <= settings.end) & (day + gap <= leaves[who]))
    next_day = np.where(go, gap, _NEVER)
    keep &= (days <= 0) | ((days <= stay[:, None]) & (days < next_day[:, None]))
    return _Round(replace(procedures, next_day=next_day), treatments, offset, latent, days, keep,
                  delay)


def _assemble(patients: _Patients, rounds: list[_Round]
              ) -> tuple[_Procedures, _Treatments, _Latent, _Visits]:
    """The rounds as one cohort, ordered by patient then date (as :func:`_procedures`)."""
    def stack(parts: list[Any], name: str, order: np.ndarray) -> np.ndarray:
        return np.concatenate([getattr(part, name) for part in parts])[order]

    procs = [r.procedures for r in rounds]
    every = slice(None)
    order = np.lexsort((stack(procs, "number", every), stack(procs, "patient", every)))
    sides = stack(procs, "sides", order)
    procedures = _Procedures(
        stack(procs, "patient", order), stack(procs, "day", order),
        stack(procs, "next_day", order), stack(procs, "decompression", order), sides,
        np.cumsum(sides) - sides, stack(procs, "number", order),
    )
    treats = [r.treatments for r in rounds]
    by = np.lexsort((stack(rounds, "offset", every), stack(treats, "number", every),
                     stack(treats, "patient", every)))
    latent = _Latent(*(stack([r.latent for r in rounds], f.name, by) for f in fields(_Latent)))
    visits = _expand_visits(procedures, stack(rounds, "days", order),
                            stack(rounds, "keep", order))
    return procedures, _treatments(patients, procedures), latent, visits


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
    cap = np.floor(RELIEF_THRESHOLD * b)  # relieved <=> pain <= cap
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
    latent: _Latent, visits: _Visits, outcomes: _Outcomes, effect: np.ndarray,
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
    headache_nerves = [i for i, name in enumerate(names) if name in HEADACHE_NERVES]
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
        "treatment_number": treatments.number.astype(np.int64),
        "patient_effect": effect[treatments.patient],
    })
    return patient_table, treatment_table, pd.DataFrame(visit_columns), events


def _visit_days(
    rng: np.random.Generator, n_proc: int, slots: list[int], jitter: int, p_missed: float
) -> tuple[np.ndarray, np.ndarray]:
    """Visit days (baseline first) and the kept mask, one row per procedure."""
    low_b, high_b = BASELINE_WINDOW_DAYS
    baseline = rng.integers(low_b, high_b + 1, n_proc)
    after, kept = scheduled_visits(rng, n_proc, slots, jitter, p_missed)
    days = np.column_stack([baseline, after])
    keep = np.column_stack([np.ones(n_proc, dtype=bool), kept])
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
