"""The practice's expected-relief report: one self-contained HTML file, with JSON and CSV beside it.

:func:`relief_report` turns a :class:`regen.Cohort` into the numbers the practice
tells patients and referring doctors, per nerve (and per procedure within a nerve
where both procedures have enough treatments):

- treatments and patients, and the responder rate (relieved within the response
  window) with a Wilson 95% interval;
- among responders, the median relief duration with a patient-bootstrap 95% CI,
  the interquartile range, and the share still relieved at 4, 8, 12 and 16 weeks
  (Turnbull NPMLE, :func:`regen.turnbull`);
- the median time until numbness fades, with its CI.

Privacy: a group (a nerve, or a procedure within a nerve) is shown only with at least
``min_group`` treatments (default 10) **and** ``min_patients`` distinct patients
(default 5: one patient treated twelve times is one patient); a suppressed group's row
says so and why, and its size cannot be recovered by subtraction, because the totals
the report prints count only the groups it shows, and a nerve is split by procedure
only when every procedure passes the rule. No patient or treatment identifier is
written anywhere: the tables are built from counts and model outputs only, and the
files are checked for every identifier of the cohort before they are kept.

Safety: every text from the data is escaped (one autoescaping template environment),
the HTML carries a Content-Security-Policy that forbids scripts and every network
request, figures are PNGs embedded in the HTML, and the files are written atomically
through :class:`regen.Outputs`: never over an input, nor over a file regen did not
write unless ``force=True``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from regen._util import json_safe
from regen._version import __version__
from regen._write import Outputs, figure_bytes, html_environment
from regen.episodes import RELIEF_CONFIRM
from regen.exceptions import ModelError, OutputError
from regen.ledger import Problems
from regen.tables import KNOWN_NERVES

__all__ = ["MIN_GROUP", "MIN_PATIENTS", "WEEKS", "analysis_page", "relief_report", "report_files"]

#: Groups with fewer treatments than this are suppressed.
MIN_GROUP = 10
#: Groups with fewer distinct patients than this are suppressed.
MIN_PATIENTS = 5
#: The files the report writes beside the HTML file.
BESIDE = ("report.json", "report_by_nerve.csv", "report_by_procedure.csv",
          "report_still_relieved.csv")


def report_files(out) -> list[Path]:
    """The files :func:`relief_report` writes for ``out``: the HTML file, then those beside it.

    Raises :class:`~regen.exceptions.OutputError` if ``out`` is not an ``.html`` file name.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"{out}: the report is an HTML file; give a name ending in .html "
                          "(report.json and the CSV tables are written beside it)")
    return [out] + [out.parent / name for name in BESIDE]


def privacy_rule(min_group: int, min_patients: int) -> str:
    """The suppression rule in words, as the report and report.json state it."""
    return (f"A nerve, or a procedure within a nerve, is shown only if it has at least "
            f"{min_group} treatments and at least {min_patients} different patients; the "
            "totals count only the groups shown, so the size of a group not shown cannot be "
            "worked out from them.")
#: Weeks at which the share still relieved is reported.
WEEKS = (4, 8, 12, 16)


def relief_report(cohort, out="report.html", *, min_group: int = MIN_GROUP,
                  min_patients: int = MIN_PATIENTS, n_bootstrap: int = 200, seed: int = 2026,
                  threshold: float = 0.5, response_window: tuple[int, int] = (1, 30),
                  confirm: int = RELIEF_CONFIRM, title: str | None = None,
                  progress: bool | None = None, n_jobs: int = 1, force: bool = False) -> dict:
    """Write the expected-relief report: ``out`` (HTML), ``report.json`` and CSV tables beside it.

    Parameters
    ----------
    cohort : Cohort
        From :func:`regen.read_cohort`.
    out : path, default "report.html"
        The HTML file; the JSON and CSV files go into the same folder.
    min_group : int, default 10
        Groups with fewer treatments are suppressed (shown as such, no numbers).
    min_patients : int, default 5
        Groups with fewer distinct patients are suppressed too.
    n_bootstrap, seed
        Bootstrap replicates (resampling patients) for the CIs, and their seed.
    threshold, response_window, confirm
        What counts as relief and when it ends, as in :meth:`regen.Cohort.episodes`.
    n_jobs : int, default 1
        Processes for the bootstrap; the result does not depend on it.
    force : bool, default False
        Replace files in the way that regen did not write (or that were changed since);
        without it they are refused with :class:`~regen.exceptions.OutputError`, as is an
        output path that is one of the cohort's input files.

    The same cohort and seed give byte-identical files. The report's date is
    today's, or the one ``SOURCE_DATE_EPOCH`` (seconds since 1970) gives, as
    for reproducible builds.

    Returns
    -------
    dict
        The report's content (what ``report.json`` holds), with ``files``: the paths written.
    """
    from regen.survival.npmle import turnbull

    for name, value in (("min_group", min_group), ("min_patients", min_patients)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    outputs = Outputs(inputs=[s.path for s in cohort.sources if s.path is not None],
                      force=force)
    files = outputs.files(report_files(out))  # refused now, before the long work
    relief, relief_excluded = cohort.episodes("relief", threshold=threshold,
                                              response_window=response_window, confirm=confirm,
                                              with_exclusions=True)
    numbness = cohort.episodes("numbness")
    treatments = cohort.treatments
    counts = _sizes(treatments, "nerve")
    shown = _publishable(counts, min_group, min_patients)
    hidden = sorted(set(counts.index) - set(shown))
    # A rare name that is not a known nerve may be free text (a typo, a note): never print it.
    unnamed = [nerve for nerve in hidden if nerve not in KNOWN_NERVES]
    hidden = [nerve for nerve in hidden if nerve in KNOWN_NERVES]
    assessed = _assessed(relief, relief_excluded, treatments)

    options = dict(n_bootstrap=n_bootstrap, seed=seed, cluster="patient_id", progress=progress,
                   n_jobs=n_jobs)
    # The durations describe a nerve's responders (or its numbness episodes): that group
    # must pass the rule too, or one patient's relief could be read off a nerve's median.
    relief_shown = _published_episodes(relief, shown, min_group, min_patients)
    numb_shown = _published_episodes(numbness, shown, min_group, min_patients)
    relief_fit = turnbull(relief_shown, by="nerve", **options) if len(relief_shown) else None
    numb_fit = turnbull(numb_shown, by="nerve", **options) if len(numb_shown) else None

    table = _nerve_table(counts, shown, hidden, unnamed, assessed,
                         {"relief": (relief_fit, set(relief_shown["nerve"])),
                          "numbness": (numb_fit, set(numb_shown["nerve"]))},
                         min_group, min_patients)
    by_procedure = _by_procedure(relief, assessed, treatments, shown, min_group, min_patients,
                                 options)
    differ = _patients_differ(relief_shown, min_patients)
    report_days = _visit_days(cohort.visits, relief_shown)
    weeks = _still_relieved(relief_fit, shown, report_days)

    figures = _figures(relief_fit, numb_fit, min_patients)

    content = {
        "title": title or "Expected relief after cryoneurolysis",
        "generated": _today().isoformat(),
        "regen_version": __version__,
        "data": _data_summary(cohort, shown),
        "privacy": {"min_group": min_group, "min_patients": min_patients,
                    "rule": privacy_rule(min_group, min_patients)},
        "settings": {"min_group": min_group, "min_patients": min_patients,
                     "n_bootstrap": n_bootstrap, "seed": seed,
                     "relief_threshold": threshold, "response_window_days": list(response_window),
                     "relief_confirm_visits": confirm,
                     "weeks": list(WEEKS), "days": report_days},
        "suppressed": hidden + ([f"{len(unnamed)} other nerve name(s)"] if unnamed else []),
        "by_nerve": _records(table),
        "by_procedure": _records(by_procedure),
        "still_relieved": _records(weeks),
        "sentences": [_sentence(r) for r in _records(table) if not r["suppressed"]],
        "patients_differ": differ,
    }
    html = _render(content, figures)
    _check_no_identifiers(content, cohort)
    html_file, json_file, nerve_file, procedure_file, weeks_file = files
    leaflets = _leaflet_paths(content, html_file.parent / "leaflets", outputs)  # before any write
    outputs.write_text(html_file, html)
    outputs.write_json(json_file, content)
    outputs.write_table(table, nerve_file)
    outputs.write_table(by_procedure, procedure_file)
    outputs.write_table(weeks, weeks_file)
    _write_leaflets(content, leaflets, outputs)
    content["files"] = files + leaflets
    return content


# ---------------------------------------------------------------- leaflets --

def _leaflet_paths(content: dict, folder: Path, outputs: Outputs) -> list[Path]:
    """Where the leaflets of the nerves shown go (``leaflets/<nerve>.html``), checked before
    the report writes anything; two names that make one file name are told apart."""
    stems: list[str] = []
    for row in content["by_nerve"]:
        if not row["suppressed"]:
            stem = _file_stem(row["nerve"])
            stems.append(stem if stem not in stems else f"{stem}_{len(stems) + 1}")
    if not stems:
        return []
    outputs.folder(folder)
    paths = [folder / f"{stem}.html" for stem in stems]
    outputs.files(paths)
    return paths


def _write_leaflets(content: dict, paths: list[Path], outputs: Outputs) -> None:
    """One printable page per nerve shown: what a patient can expect, in the report's numbers
    and plain words, from its checked content only."""
    rows = [row for row in content["by_nerve"] if not row["suppressed"]]
    template = html_environment("regen.report").get_template("leaflet.html.j2")
    for row, path in zip(rows, paths, strict=True):
        still = [cell for cell in content["still_relieved"] if cell["nerve"] == row["nerve"]]
        outputs.write_text(path, template.render(report=content, leaflet=_leaflet(row, still)))


def _file_stem(name: str) -> str:
    """A nerve's name as a file name: lower-case letters, digits and underscores only."""
    return re.sub(r"[^a-z0-9_]+", "_", str(name).lower()).strip("_")[:60] or "nerve"


def _leaflet(row: dict, still: list[dict]) -> dict:
    """The leaflet's sentences for one nerve, each counting treatments."""
    nerve = row["nerve"].replace("_", " ")
    out = {"nerve": nerve, "treatments": row["treatments"], "patients": row["patients"]}
    rate = _number(row.get("responder_rate"))
    out["help"] = (
        f"{rate:.0%} of the treatments of the {nerve} nerve gave relief in the first month: "
        f"{row['responders']} of {row['assessed']} (95% range {row['responder_rate_ci_lower']:.0%}"
        f" to {row['responder_rate_ci_upper']:.0%})." if math.isfinite(rate) else
        "Too few treatments were assessed in the first month to say how often it helps.")
    median = _number(row.get("relief_median_days"))
    if row.get("relief_note") or math.isnan(median):
        out["lasts"] = ("Too few treatments of this nerve gave relief to say here how long it "
                        "lasts.")
    elif math.isinf(median):
        out["lasts"] = ("After more than half of the treatments that gave relief, it was still "
                        "there at the last visit: how long it lasts is not known yet.")
    else:
        q1, q3 = _number(row["relief_q1_days"]), _number(row["relief_q3_days"])
        beyond = ("beyond the follow-up" if math.isinf(q3) else f"beyond week {_weeks(q3)}")
        out["lasts"] = (
            f"After half of the treatments that gave relief, it lasted {_weeks(median)} weeks "
            f"or more from the freeze "
            f"({_plain_range(row['relief_median_ci_lower'], row['relief_median_ci_upper'])}). "
            f"After a quarter it had ended by week {_weeks(q1)}; after a quarter it lasted "
            f"{beyond}.")
    out["still"] = [(f"week {cell['week']}", _format_share_range(cell)
                     + (f" (95% range {_format_share(cell['ci_lower'])} to "
                        f"{_format_share(cell['ci_upper'])})"
                        if math.isfinite(_number(cell["ci_lower"])) else ""))
                    for cell in still]
    numb = _number(row.get("numbness_median_days"))
    out["numb"] = (
        f"The skin this nerve supplies is numb at first. The numbness had faded by week "
        f"{_weeks(numb)} after half of the treatments "
        f"({_plain_range(row['numbness_median_ci_lower'], row['numbness_median_ci_upper'])}),"
        " as the nerve grew back; relief usually wears off around then or a little later."
        if math.isfinite(numb) and not row.get("numbness_note") else
        "The skin this nerve supplies is numb at first, and the numbness fades as the nerve "
        "grows back; too few treatments were followed to say here when.")
    return out


def _plain_range(low, high) -> str:
    """'95% range 5–9 weeks': the report's interval in the leaflet's words."""
    return _week_range(low, high).replace("95% CI", "95% range")


def _data_summary(cohort, shown: list) -> dict:
    """The files read (names and checksums), and the dates and counts of the treatments of
    the nerves shown only: the whole cohort's counts, less those shown, would give the size
    of the groups that are not."""
    published = cohort.treatments.loc[cohort.treatments["nerve"].isin(shown)]
    dates = published["treated_on"].dropna()
    return {
        "files": [{"name": s.name, "sha256": s.sha256} for s in cohort.sources],
        "treated_from": dates.min().strftime("%Y-%m") if len(dates) else None,
        "treated_to": dates.max().strftime("%Y-%m") if len(dates) else None,
        "patients": int(published["patient_id"].nunique()),
        "treatments": int(len(published)),
        "counts_cover": "the nerves shown",
    }


def _published_episodes(episodes: pd.DataFrame, shown: list, min_group: int,
                        min_patients: int) -> pd.DataFrame:
    """The episodes of the nerves shown whose episodes pass the rule too: a nerve's durations
    describe its responders (or its numbness episodes), a smaller group than its treatments,
    and one patient's relief must not be read off a nerve's median."""
    of_shown = episodes.loc[episodes["nerve"].isin(shown)]
    return episodes.loc[episodes["nerve"].isin(
        _publishable(_sizes(of_shown, "nerve"), min_group, min_patients))]


def _nerve_table(counts: pd.DataFrame, shown: list, hidden: list, unnamed: list,
                 assessed: pd.DataFrame, fits: dict, min_group: int,
                 min_patients: int) -> pd.DataFrame:
    """One row per nerve: counts, responders and durations for a nerve shown; only why it
    is not for a nerve hidden; one row for the unnamed ones together. ``fits`` holds, for
    relief and numbness, the NPMLE and the nerves whose episodes may be published."""
    rows = []
    too_few = f"fewer than {min_group} episodes or {min_patients} patients"
    for nerve in sorted(set(shown) | set(hidden)):
        row = {"nerve": nerve, "procedure": "all",
               "treatments": int(counts.loc[nerve, "treatments"]),
               "patients": int(counts.loc[nerve, "patients"])}
        if nerve in hidden:
            rows.append({**row, "suppressed": True, "treatments": None, "patients": None,
                         "note": _too_small(counts.loc[nerve], min_group, min_patients)})
            continue
        row.update(suppressed=False, note="",
                   **_responders(assessed.loc[assessed["nerve"] == nerve]))
        for outcome, (fit, published) in fits.items():
            row.update(_durations(fit, nerve, outcome))
            row[f"{outcome}_note"] = "" if nerve in published else too_few
        rows.append(row)
    if unnamed:
        rows.append({"nerve": "other nerves", "procedure": "all", "treatments": None,
                     "patients": None, "suppressed": True,
                     "note": f"{len(unnamed)} other nerve name(s), each with fewer than "
                             f"{min_group} treatments or {min_patients} patients"})
    table = pd.DataFrame(rows)
    for name in ("treatments", "patients", "assessed", "responders"):  # counts, not 85.0
        if name in table.columns:
            table[name] = table[name].astype("Int64")
    return table


def _sizes(frame: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Rows (treatments or episodes) and distinct patients of each group."""
    return frame.groupby(by).agg(treatments=("patient_id", "size"),
                                 patients=("patient_id", "nunique"))


def _publishable(sizes: pd.DataFrame, min_group: int, min_patients: int) -> list:
    """The groups the report may show: at least ``min_group`` rows and ``min_patients``
    patients."""
    ok = (sizes["treatments"] >= min_group) & (sizes["patients"] >= min_patients)
    return sorted(sizes.index[ok])


def _too_small(counts: pd.Series, min_group: int, min_patients: int) -> str:
    """Why a group is not shown, in the report's words."""
    if counts["treatments"] < min_group:
        return f"fewer than {min_group} treatments"
    return f"fewer than {min_patients} patients"


def _today() -> _dt.date:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return _dt.datetime.fromtimestamp(int(epoch), tz=_dt.UTC).date()
    return _dt.date.today()


# ------------------------------------------------------------------ numbers --

def _assessed(relief: pd.DataFrame, excluded: pd.DataFrame,
              treatments: pd.DataFrame) -> pd.DataFrame:
    """Treatments assessed for response: responders (episodes) and non-responders."""
    cols = ["nerve"] + (["procedure"] if "procedure" in treatments.columns else [])
    no = excluded.loc[excluded["reason"] == "no_response", "id"]
    lookup = treatments.set_index("treatment_id")
    parts = [relief[cols].assign(responder=True),
             lookup.loc[lookup.index.isin(no), cols].reset_index(drop=True).assign(responder=False)]
    return pd.concat(parts, ignore_index=True)


def _wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    z = stats.norm.ppf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def _responders(assessed: pd.DataFrame) -> dict:
    n = int(len(assessed))
    yes = int(assessed["responder"].sum())
    low, high = _wilson(yes, n)
    return {"assessed": n, "responders": yes, "responder_rate": yes / n if n else math.nan,
            "responder_rate_ci_lower": low, "responder_rate_ci_upper": high}


def _durations(fit, group, outcome: str) -> dict:
    prefix = "relief" if outcome == "relief" else "numbness"
    empty = {f"{prefix}_median_days": math.nan, f"{prefix}_median_ci_lower": math.nan,
             f"{prefix}_median_ci_upper": math.nan}
    if outcome == "relief":
        empty.update({"relief_q1_days": math.nan, "relief_q3_days": math.nan})
    if fit is None or group not in fit.groups:
        return empty
    q = fit.quantile([0.25, 0.5, 0.75])
    q = q.loc[q[fit.by[0]] == group].set_index("q")
    out = {f"{prefix}_median_days": q.loc[0.5, "time"],
           f"{prefix}_median_ci_lower": q.loc[0.5].get("ci_lower", math.nan),
           f"{prefix}_median_ci_upper": q.loc[0.5].get("ci_upper", math.nan)}
    if outcome == "relief":
        out.update({"relief_q1_days": q.loc[0.25, "time"], "relief_q3_days": q.loc[0.75, "time"]})
    return out


def _visit_days(visits: pd.DataFrame, episodes: pd.DataFrame) -> list[float]:
    """The day on which each of :data:`WEEKS` is reported: the most usual visit day of the
    episodes within a week of it (the earliest of equals), or the week's own day when no
    visit falls so near. On a visit day the share is known; between visits only its bounds
    are, which can be far apart."""
    days = visits.loc[visits["treatment_id"].isin(episodes["treatment_id"]), "day"]
    days = pd.to_numeric(days, errors="coerce").dropna()
    chosen = []
    for week in WEEKS:
        near = days[(days >= 7 * week - 7) & (days <= 7 * week + 7)]
        chosen.append(float(near.mode().min()) if len(near) else 7.0 * week)
    return chosen


def _still_relieved(fit, shown, days: list[float]) -> pd.DataFrame:
    columns = ["nerve", "week", "day", "still_relieved", "still_relieved_lower",
               "still_relieved_upper", "ci_lower", "ci_upper"]
    if fit is None:
        return pd.DataFrame(columns=columns)
    table = fit.survival_at(days).rename(columns={
        "time": "day", "survival": "still_relieved", "survival_lower": "still_relieved_lower",
        "survival_upper": "still_relieved_upper"})
    table["week"] = table["day"].map(dict(zip(days, WEEKS, strict=True)))
    for name in ("ci_lower", "ci_upper"):
        if name not in table.columns:
            table[name] = math.nan
    return table.loc[table["nerve"].isin(shown), columns].reset_index(drop=True)


def _by_procedure(relief, assessed, treatments, shown, min_group, min_patients,
                  options) -> pd.DataFrame:
    """Nerves whose procedures differ: every procedure shown if each passes the privacy rule,
    else none of the nerve's (showing some would give the others' size by subtraction)."""
    from regen.survival.npmle import turnbull

    columns = ["nerve", "procedure", "treatments", "responder_rate", "relief_median_days",
               "relief_median_ci_lower", "relief_median_ci_upper"]
    if "procedure" not in treatments.columns or treatments["procedure"].isna().all():
        return pd.DataFrame(columns=columns)
    sizes = _sizes(treatments, ["nerve", "procedure"])
    ok = set(_publishable(sizes, min_group, min_patients))
    responders = set(_publishable(_sizes(relief, ["nerve", "procedure"]), min_group, min_patients))
    rows = []
    for nerve in shown:
        if nerve not in sizes.index.get_level_values(0):
            continue
        per = sizes.loc[nerve, "treatments"]
        if len(per) < 2 or not all((nerve, procedure) in ok for procedure in per.index):
            continue
        part = relief.loc[relief["nerve"].eq(nerve) & relief["procedure"].isin(
            [procedure for name, procedure in responders if name == nerve])]
        fit = turnbull(part, by="procedure", **options) if len(part) else None
        for procedure, n in per.items():
            rates = _responders(assessed.loc[(assessed["nerve"] == nerve)
                                             & (assessed["procedure"] == procedure)])
            rows.append({"nerve": nerve, "procedure": procedure, "treatments": int(n),
                         "responder_rate": rates["responder_rate"],
                         **_durations(fit, procedure, "relief")})
    frame = pd.DataFrame(rows, columns=[*columns, "relief_q1_days", "relief_q3_days"])
    return frame[columns]


# ---------------------------------------------------------------- wording --

def _number(value) -> float:
    """A value of the report's records as a float: None is NaN, "inf" (JSON's spelling) inf."""
    if value is None:
        return math.nan
    return math.inf if value == "inf" else float(value)


def _weeks(days) -> str:
    days = _number(days)
    if not math.isfinite(days):
        return "beyond follow-up"
    return f"{days / 7:.0f}"


def _week_range(low, high) -> str:
    """'95% CI 7–9 weeks', or 'from 44 weeks to beyond follow-up'."""
    low, high = _number(low), _number(high)
    if math.isnan(low) or math.isnan(high):
        return "95% CI not available"
    if math.isinf(high):
        return f"95% CI from {_weeks(low)} weeks to beyond follow-up"
    return f"95% CI {_weeks(low)}–{_weeks(high)} weeks"


def _sentence(row: dict) -> str:
    """What a patient can expect from a treatment of one nerve, in plain words. Every number
    counts treatments (a patient's two nerves are two), and durations run from the freeze."""
    nerve = row["nerve"].replace("_", " ")
    parts = []
    rate = _number(row.get("responder_rate"))
    if math.isfinite(rate):
        parts.append(f"Of {row['assessed']} treatments of the {nerve} nerve assessed in the first "
                     f"month, {rate:.0%} gave relief (95% CI {row['responder_rate_ci_lower']:.0%}"
                     f"–{row['responder_rate_ci_upper']:.0%}).")
    median = _number(row.get("relief_median_days"))
    if row.get("relief_note"):
        parts.append(f"Too few treatments of the {nerve} nerve gave relief, or too few patients "
                     "had them, to say here how long relief lasts.")
    elif math.isinf(median):
        parts.append(f"After more than half of the treatments of the {nerve} nerve that gave "
                     "relief, it was still there at the last visit, so how long it lasts for "
                     "half of them is not known yet.")
    elif math.isfinite(median):
        q1, q3 = _number(row["relief_q1_days"]), _number(row["relief_q3_days"])
        last = ("after a quarter it lasted beyond the follow-up" if math.isinf(q3)
                else f"after a quarter it lasted beyond week {_weeks(q3)}")
        parts.append(f"After half of the treatments of the {nerve} nerve that gave relief, it "
                     f"lasted {_weeks(median)} weeks or more from the freeze "
                     f"({_week_range(row['relief_median_ci_lower'], row['relief_median_ci_upper'])})"
                     f"; after a quarter it had ended by week {_weeks(q1)}, and {last}.")
    numb = _number(row.get("numbness_median_days"))
    if row.get("numbness_note"):
        parts.append("Too few treatments had their numbness followed to say here when it fades.")
    elif math.isfinite(numb):
        parts.append(f"Numbness had faded by week {_weeks(numb)} after half of the treatments "
                     f"({_week_range(row['numbness_median_ci_lower'], row['numbness_median_ci_upper'])}).")
    return " ".join(parts)


# ------------------------------------------------------ how patients differ --

#: Patients with two or more relief episodes needed to say how much patients differ.
MIN_REPEAT_PATIENTS = 10
#: The quartiles of a normal patient effect, in SDs.
_QUARTILE_Z = 0.6744897501960817


def _patients_differ(relief: pd.DataFrame, min_patients: int) -> dict:
    """How much patients differ in how long relief lasts, from the shared-frailty AFT
    (log-normal) on the published nerves' relief episodes: shown when the patient effect is
    clearly above 0 (the likelihood-ratio test at 5% and an interval that excludes 0).

    Returns ``shown`` and either ``reason`` (why not) or the frailty SD with its interval,
    the test's p-value, the reference nerve and the quartiles (days, with 95% CIs) of the
    patients' own typical (median) relief for it."""
    from regen.survival.aft import fit_recovery

    repeat = relief.groupby("patient_id")["treatment_id"].size()
    n_repeat = int((repeat >= 2).sum())
    if n_repeat < max(MIN_REPEAT_PATIENTS, min_patients):
        return {"shown": False, "patients_with_repeats": n_repeat,
                "reason": f"only {n_repeat} patients had relief from two or more treatments; "
                          f"at least {max(MIN_REPEAT_PATIENTS, min_patients)} are needed to "
                          "say how much patients differ"}
    nerve = relief["nerve"].value_counts().index[0]
    formula = "~ nerve" if relief["nerve"].nunique() > 1 else "~ 1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_recovery(formula, relief, dist="lognormal", frailty="patient_id")
    except (ModelError, ValueError) as error:
        return {"shown": False, "patients_with_repeats": n_repeat,
                "reason": f"the model of repeated treatments could not be fitted ({error})"}
    low, high = fit.frailty_ci
    clear = fit.frailty_test["p_value"] < 0.05 and low > 0
    out = {"shown": bool(clear), "patients_with_repeats": n_repeat,
           "frailty_sd": fit.frailty_sd, "frailty_ci": [low, high],
           "p_value": fit.frailty_test["p_value"], "nerve": nerve}
    if not clear:
        out["reason"] = ("the relief of one patient's treatments was no more alike than that "
                         "of different patients' treatments, beyond chance")
        return out
    x = fit.design.matrix(pd.DataFrame({"nerve": [nerve]}))[0]
    k = len(x)
    centre = float(x @ fit.params.iloc[:k])            # log-normal: the median's eps is 0
    z = fit.critical_value(0.05)
    for name, sign in (("short", -1), ("long", 1)):
        gradient = np.r_[x, 0.0, sign * _QUARTILE_Z]
        log_days = centre + sign * _QUARTILE_Z * fit.frailty_sd
        se = float(fit.delta_se(gradient[None, :])[0])
        out[f"{name}_days"] = float(np.exp(log_days))
        out[f"{name}_ci"] = [float(np.exp(log_days - z * se)), float(np.exp(log_days + z * se))]
    return out


# ----------------------------------------------------------------- output --

def _figures(relief_fit, numb_fit, min_patients: int) -> dict:
    """The report's recovery figures (base64 PNG) of the fits there are."""
    figures = {}
    if relief_fit is not None:
        figures["relief"] = _figure(relief_fit, "Still relieved (responders)", min_patients)
    if numb_fit is not None:
        figures["numbness"] = _figure(numb_fit, "Still numb", min_patients)
    return figures


def _figure(fit, ylabel: str, min_patients: int) -> str:
    import matplotlib.pyplot as plt

    from regen import plot

    if len(fit.groups) > plot.PANELS_ABOVE:  # one panel each, or bands cover each other
        figure = plot.recovery_panels(fit, ylabel=ylabel, weeks=True)
    else:
        figure = plot.recovery(fit, ylabel=ylabel, at_risk_below=min_patients, weeks=True).figure
    with plot.style():
        data = figure_bytes(figure, "png", dpi=160)
    plt.close(figure)
    return base64.b64encode(data).decode("ascii")


def analysis_page(title: str, sections: list[dict], notes=()) -> str:
    """A self-contained HTML page of text and tables for an analysis script: autoescaped,
    with a policy that allows no script.

    ``sections``: dicts of ``heading``, ``lines`` (paragraphs) and ``tables`` (dicts of
    ``caption``, ``columns`` and ``rows``, every cell as text); ``notes``: closing remarks.
    """
    template = html_environment("regen.report").get_template("analysis_page.html.j2")
    return template.render(title=title, sections=sections, notes=list(notes))


def _render(content: dict, figures: dict) -> str:
    environment = html_environment("regen.report")
    environment.filters["weeks"] = _format_weeks
    environment.filters["share"] = _format_share
    environment.filters["share_range"] = _format_share_range
    environment.filters["label"] = lambda text: str(text).replace("_", " ")
    return environment.get_template("report.html.j2").render(report=content, figures=figures)


def _format_weeks(days) -> str:
    """Days as whole weeks for a table a person reads; "–" for none."""
    return "–" if math.isnan(_number(days)) else _weeks(days)


def _format_share(value) -> str:
    value = _number(value)
    return "–" if math.isnan(value) else f"{value:.0%}"


def _format_share_range(cell: dict) -> str:
    """A share on a visit day ('62%'), or the range the data allow between visits
    ('between 44% and 86%'), as whole percentages."""
    low, high = _format_share(cell["still_relieved_lower"]), _format_share(
        cell["still_relieved_upper"])
    return _format_share(cell["still_relieved"]) if low == high else f"between {low} and {high}"


def _records(frame: pd.DataFrame) -> list[dict]:
    return json_safe(frame.to_dict(orient="records"))


#: Fields of the report's records that hold regen's own words, not text from the data.
_OWN_FIELDS = frozenset({"note", "relief_note", "numbness_note"})


def _published_text(content: dict) -> list[tuple[str, str]]:
    """What the data bring into the report, as (column or origin, text): every text field of
    the published tables (nerve and procedure names), the input files' names and the title."""
    found = [("title", content["title"])]
    for record in content["by_nerve"] + content["by_procedure"] + content["still_relieved"]:
        if record.get("nerve") == "other nerves" and record.get("suppressed"):
            continue  # regen's label for names it only counts
        found += [(key, value) for key, value in record.items()
                  if isinstance(value, str) and key not in _OWN_FIELDS]
    found += [("nerve", name) for name in content["suppressed"]
              if not re.fullmatch(r"\d+ other nerve name\(s\)", name)]
    for source in content["data"]["files"]:
        found += [("file name", source["name"]), ("file name", Path(source["name"]).stem)]
    return found


def _check_no_identifiers(content: dict, cohort) -> None:
    """Refuse to write a report that would publish a patient or treatment id.

    The tables are built from counts and model outputs; text reaches the report only from
    the data's names (nerves, procedures), the input files' names and the title. An id
    among their words (a nerve column holding patient ids, a workbook named after a
    patient) stops the report before anything is written, with a
    :class:`~regen.exceptions.CohortValidationError` naming the column, the row and the
    value; ids are compared in any case (nerve names are lower-cased on reading). Short
    all-digit ids (under 6 digits) are left out, as they cannot be told from counts and days.
    """
    treatments = cohort.treatments
    ids = set(treatments["patient_id"].astype(str)) | set(treatments["treatment_id"].astype(str))
    ids = {i.casefold() for i in ids if re.search(r"[^0-9]", i) or len(i) >= 6}
    leaks = {(where, text) for where, text in _published_text(content)  # nerve names are
             if ids & set(re.findall(r"[a-z0-9_.\-]+", text.casefold()))}  # lower-cased
    if not leaks:
        return
    label = next((s.name for s in cohort.sources if s.name.lower().startswith("treatments")),
                 cohort.sources[0].name if cohort.sources else "treatments")
    problems = Problems()
    for where, text in sorted(leaks):
        if where in treatments.columns:
            rows = treatments.loc[treatments[where].astype(str) == text, "source_row"]
            problems.add(label, "treatments", int(rows.iloc[0]) if len(rows) else None, where,
                         text, "a patient or treatment id would be published in the report",
                         f"the {where} column must not hold ids; correct the value")
        else:
            problems.add(text if where == "file name" else "the report's title", None, None,
                         None, text, f"the {where} holds a patient or treatment id, and the "
                         f"report shows its {where}", "rename it so that it names no patient")
    problems.raise_if_any("Report (nothing was written)")
