r"""Two-group studies whose truth is a hazard ratio, for planning and for testing the models.

:func:`regen.simulate.cohort` simulates the mechanism (regrowth velocity, distance, lag), in
which no covariate has one hazard ratio. :func:`trial` draws the simplest study a hazard ratio
describes exactly: a control and a treated group, one episode per patient, event times from a
Weibull law with proportional hazards, seen at scheduled visits.

The model
---------
Patient :math:`i` is treated (:math:`x_i = 1`) or a control (:math:`x_i = 0`); its event time
:math:`T_i` (days) has the survival function

.. math::

    S(t \mid x) = \exp\{-\mathrm{HR}^{x} (t / \lambda)^k\} = S_0(t)^{\mathrm{HR}^{x}},
    \qquad \lambda = m / (\log 2)^{1/k},

with :math:`m` the control group's median (``median_days``), :math:`k` the Weibull shape
(``shape``; 1 is the exponential law) and :math:`\mathrm{HR}` the hazard ratio of treated to
control (``hazard_ratio``), the same at every time. The same law as an accelerated failure
time model: :math:`\log T_i = \log\lambda - (\log\mathrm{HR} / k)\,x_i + W_i / k`, with
:math:`W_i` standard minimum extreme value. So the truth each model estimates is

=====================================  ==============================================
quantity                               true value
=====================================  ==============================================
log hazard ratio (:func:`regen.fit_ph`  :math:`\log\mathrm{HR}`
``params["group[T.treated]"]``)
Weibull AFT coefficient                :math:`-\log(\mathrm{HR}) / k`
(:func:`regen.fit_recovery`,
``dist="weibull"``, same name)
Weibull scale :math:`\sigma`            :math:`1 / k`
median, control and treated            :math:`m` and :math:`m\,\mathrm{HR}^{-1/k}`
=====================================  ==============================================

and ``frame.attrs["truth"]`` holds these numbers.

Observation
-----------
``exact=False``: every patient has a baseline visit on day 0, then one visit per ``schedule``
day moved by a uniform whole number of days up to ``jitter_days`` (kept after day 0 and
between its neighbours, as :func:`regen.simulate.cohort` does), each missed with
``p_missed``; a patient leaves follow-up at an exponential time whose probability within a
year is ``dropout_per_year`` (no visit after it). The event is known to lie in
``(lower, upper]``: from the last visit before it to the first visit on or after it;
``lower = 0`` when the first visit after baseline is already after it (left-censored), and
``upper = inf`` when no visit comes after it (right-censored; ``(0, inf)`` for a patient who
left before any visit: kept, so that each patient has a row, and worth nothing to a model).
``exact=True``: the time itself (``lower == upper``), or ``(c, inf)`` when the event comes
after ``c``, the earlier of leaving and the last ``schedule`` day.

The draws come from one seeded stream in a fixed order (the allocation, the event times'
exponential draws, the leaving times, the visits' jitter and missed visits), each drawn
whatever the settings: studies that differ only in ``hazard_ratio``, ``median_days``,
``shape``, ``exact``, ``p_missed`` or ``dropout_per_year`` share every random number, so
their differences are the settings' alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from regen.simulate.settings import check_number, check_schedule, check_seed, scheduled_visits

__all__ = ["trial"]

GROUPS = ("control", "treated")


def trial(
    n_patients: int,
    *,
    hazard_ratio: float = 1.0,
    median_days: float = 60.0,
    shape: float = 1.0,
    p_treated: float = 0.5,
    schedule: Sequence[int] = (14, 28, 56, 84, 112, 168),
    jitter_days: int = 3,
    p_missed: float = 0.1,
    dropout_per_year: float = 0.0,
    exact: bool = False,
    seed: int | None = None,
) -> pd.DataFrame:
    """Simulate a two-group study with proportional hazards: one episode per patient.

    The model, what each regen model estimates of it and how the events are seen are in
    the module docstring (:mod:`regen.simulate.trial`).

    Parameters
    ----------
    n_patients : int
        Number of patients, at least 1.
    hazard_ratio : float, default 1.0
        Hazard of the event in the treated group over the control group's, at every time
        (> 0). Above 1 the event comes sooner with treatment.
    median_days : float, default 60.0
        Median time to the event in the control group, days (> 0).
    shape : float, default 1.0
        Weibull shape (> 0): 1 a constant hazard (exponential times), above 1 a rising one.
    p_treated : float, default 0.5
        Share of patients treated (0 to 1): ``round(p_treated * n_patients)`` of them,
        chosen at random (a fixed allocation, as in a randomised trial).
    schedule : sequence of int, default (14, 28, 56, 84, 112, 168)
        Nominal visit days after the baseline visit on day 0, strictly increasing and
        positive; the last one ends the follow-up.
    jitter_days : int, default 3
        Each visit is moved by a uniform whole number of days in
        ``[-jitter_days, jitter_days]`` (>= 0), kept after day 0 and between neighbours.
    p_missed : float, default 0.1
        Probability that a scheduled visit is missed (0 to 1).
    dropout_per_year : float, default 0.0
        Probability of leaving follow-up within a year (0 to below 1; an exponential time).
    exact : bool, default False
        False: events seen at visits, interval-censored. True: exact times, right-censored
        at leaving or at the last schedule day.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same study.
        ``None`` draws fresh entropy, recorded in ``attrs["truth"]["seed"]``.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``patient_id``, ``treatment_id``, ``group`` (``"control"``
        or ``"treated"``), ``lower``, ``upper`` (the event happened in ``(lower, upper]``
        days; ``upper = inf`` when right-censored, ``lower == upper`` for an exact time),
        ``status`` (``interval_censored``, ``left_censored``, ``right_censored`` or
        ``exact``) and ``event_day``, the latent event time: the truth, for checking
        estimators, never for fitting. ``attrs["truth"]`` holds the settings, the seed,
        ``log_hazard_ratio``, ``aft_coefficient`` (``-log(hazard_ratio) / shape``),
        ``weibull_scale_days`` (lambda), ``median_days_control`` and
        ``median_days_treated``. It fits as episodes do: ``regen.logrank_test(ep,
        by="group")``, ``regen.fit_ph("~ group", ep)``, ``regen.fit_recovery("~ group",
        ep, dist="weibull")``, ``regen.turnbull(ep, by="group")``.

    Raises
    ------
    TypeError
        If an argument is not a number (``exact``: not True or False).
    ValueError
        If an argument is out of its range, naming it and its value.

    Examples
    --------
    >>> import numpy as np
    >>> import regen
    >>> from regen.simulate import trial
    >>> ep = trial(200, hazard_ratio=2.0, seed=1)
    >>> ep.columns.tolist()
    ['patient_id', 'treatment_id', 'group', 'lower', 'upper', 'status', 'event_day']
    >>> ep.groupby("group")["status"].size().to_dict()
    {'control': 100, 'treated': 100}
    >>> bool(((ep.lower < ep.event_day) & (ep.event_day <= ep.upper)).all())
    True
    >>> round(ep.attrs["truth"]["log_hazard_ratio"], 3)
    0.693
    >>> ph = regen.fit_ph("~ group", ep)
    >>> bool(abs(ph.params["group[T.treated]"] - np.log(2)) < 3 * ph.bse["group[T.treated]"])
    True
    """
    n = check_number("n_patients", n_patients, low=1, integer=True)
    hr = check_number("hazard_ratio", hazard_ratio, low=0, low_open=True)
    median = check_number("median_days", median_days, low=0, low_open=True)
    k = check_number("shape", shape, low=0, low_open=True)
    share = check_number("p_treated", p_treated, low=0, high=1)
    days = check_schedule(schedule)
    jitter = check_number("jitter_days", jitter_days, low=0, integer=True)
    missed = check_number("p_missed", p_missed, low=0, high=1)
    dropout = check_number("dropout_per_year", dropout_per_year, low=0, high=1)
    if dropout == 1:
        raise ValueError("dropout_per_year must be below 1 (1 ends every follow-up on day 0), "
                         f"got {dropout_per_year!r}")
    if not isinstance(exact, bool | np.bool_):
        raise TypeError(f"exact must be True or False, got {exact!r}")
    seed = check_seed(seed)

    rng = np.random.default_rng(seed)
    n_treated = math.floor(share * n + 0.5)
    treated = rng.permutation(n) < n_treated
    scale = median / math.log(2) ** (1 / k)   # lambda: S_0(t) = exp(-(t / lambda)^k)
    event = np.where(treated, scale * hr ** (-1 / k), scale) * rng.standard_exponential(n) ** (1 / k)
    rate = -math.log1p(-dropout) / 365.25   # per day
    leaving = rng.standard_exponential(n)   # drawn whatever the rate: the same later draws
    leaves = leaving / rate if rate > 0 else np.full(n, np.inf)
    visits, kept = _visits(rng, n, days, jitter, missed)
    kept &= visits <= leaves[:, None]
    if exact:
        end = np.minimum(leaves, days[-1])
        seen = event <= end
        lower, upper = np.where(seen, event, end), np.where(seen, event, np.inf)
    else:
        lower, upper = _intervals(visits, kept, event)
    truth = {
        "n_patients": n, "n_treated": n_treated, "seed": seed, "hazard_ratio": hr,
        "log_hazard_ratio": math.log(hr), "shape": k, "aft_coefficient": -math.log(hr) / k,
        "weibull_scale_days": scale, "median_days_control": median,
        "median_days_treated": median * hr ** (-1 / k), "p_treated": share,
        "schedule": days, "jitter_days": jitter, "p_missed": missed,
        "dropout_per_year": dropout, "exact": bool(exact),
    }
    return _frame(treated, lower, upper, event, truth)


def _visits(rng: np.random.Generator, n: int, schedule: list[int], jitter: int,
            p_missed: float) -> tuple[np.ndarray, np.ndarray]:
    """Visit days (day 0, then the schedule's, jittered) and which were kept, one row per
    patient, drawn as :func:`regen.simulate.cohort` draws them after its baseline visit."""
    after, kept = scheduled_visits(rng, n, schedule, jitter, p_missed)
    days = np.column_stack([np.zeros(n, dtype=np.int64), after])
    return days, np.column_stack([np.ones(n, dtype=bool), kept])


def _intervals(days: np.ndarray, kept: np.ndarray, event: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(last kept visit before the event, first kept visit on or after it]``; ``upper`` is
    inf when no kept visit comes after it (day 0 is always kept, and before every event)."""
    rows = np.arange(len(days))
    after = kept & (days >= event[:, None])
    first_after = after.argmax(axis=1)
    upper = np.where(after.any(axis=1), days[rows, first_after], np.inf)
    before = kept & (days < event[:, None])
    before[:, 0] = True
    last_before = days.shape[1] - 1 - before[:, ::-1].argmax(axis=1)
    return days[rows, last_before].astype("float64"), upper.astype("float64")


def _frame(treated: np.ndarray, lower: np.ndarray, upper: np.ndarray, event: np.ndarray,
           truth: dict) -> pd.DataFrame:
    n = len(treated)
    width = max(4, len(str(n)))
    number = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    status = np.select([np.isinf(upper), lower == upper, lower == 0],
                       ["right_censored", "exact", "left_censored"], "interval_censored")
    frame = pd.DataFrame({
        "patient_id": pd.array(np.char.add("P", number).astype(object), dtype="string"),
        "treatment_id": pd.array(np.char.add("T", number).astype(object), dtype="string"),
        "group": pd.array(np.array(GROUPS, dtype=object)[treated.astype(np.int64)],
                          dtype="string"),
        "lower": lower, "upper": upper, "status": status.astype(object), "event_day": event,
    })
    frame.attrs["truth"] = truth
    return frame
