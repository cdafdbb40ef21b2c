"""The CONSORT-style flow diagram of a cohort, drawn from :meth:`regen.Cohort.flow`.

:func:`regen.plot.flow` is the public name; this module lays out and draws the boxes.
The main column follows the treated nerves from the files to the episodes analysed:
patients → treatments → visits analysed → (relief: assessed for response →) episodes,
the last box split by how each episode ended. Each step that leaves something out has a
side box with the number left out and each reason with its count. Every count is one of
``cohort.flow()``'s, never recomputed; texts from the data (reasons) are drawn literally.
"""

from __future__ import annotations

import pandas as pd

from regen._write import literal

__all__ = ["STATUS_WORDS", "draw_flow", "flow_boxes"]

#: How the episode box names each status, by outcome.
STATUS_WORDS = {
    "numbness": {"interval_censored": "numbness faded between two visits",
                 "left_censored": "not numb at the first visit",
                 "right_censored": "still numb at the last visit"},
    "relief": {"interval_censored": "relief ended between two visits",
               "right_censored": "still relieved at the last visit"},
}
_FLOW_COLUMNS = ("step", "outcome", "reason", "count")
_OUTCOMES = ("numbness", "relief")


def _reasons(flow: pd.DataFrame, step: str, outcome: str = "") -> list[tuple[str, int]]:
    rows = flow.loc[(flow["step"] == step) & (flow["outcome"] == outcome)]
    return [(str(reason), int(count)) for reason, count in zip(rows["reason"], rows["count"],
                                                                 strict=True)]


def _count(flow: pd.DataFrame, step: str, outcome: str = "") -> int:
    return sum(n for _, n in _reasons(flow, step, outcome))


def _words(reason: str) -> str:
    return literal(str(reason).replace("_", " "))


def _side(step: str, title: str, reasons: list[tuple[str, int]]) -> dict | None:
    """A side box: what left the flow at this step, in total and by reason."""
    reasons = [(reason, n) for reason, n in reasons if n > 0]
    if not reasons:
        return None
    total = sum(n for _, n in reasons)
    lines = [title, f"n = {total}"]
    if len(reasons) > 1 or reasons[0][0] not in ("", step):
        lines += [f"{_words(reason)}: {n}" for reason, n in reasons]
    return {"box": step, "column": "side", "count": total, "text": "\n".join(lines)}


def flow_boxes(flow: pd.DataFrame, outcome: str = "relief") -> pd.DataFrame:
    """The boxes of the flow diagram, top to bottom, as drawn.

    Parameters
    ----------
    flow : DataFrame
        :meth:`regen.Cohort.flow`'s table (``step, outcome, reason, count``).
    outcome : {"relief", "numbness"}

    Returns
    -------
    DataFrame
        ``box, column, count, text``: ``column`` is ``main`` or ``side`` (a side box
        branches off the arrow from the main box above it), ``count`` the box's number,
        ``text`` what the box says.
    """
    if not isinstance(flow, pd.DataFrame) or not set(_FLOW_COLUMNS) <= set(flow.columns):
        raise ValueError("flow must be Cohort.flow()'s table, with columns "
                         + ", ".join(_FLOW_COLUMNS))
    if outcome not in _OUTCOMES:
        raise ValueError(f"outcome must be 'numbness' or 'relief', not {outcome!r}")
    flow = flow.assign(outcome=flow["outcome"].fillna("").astype(str),
                       reason=flow["reason"].fillna("").astype(str))
    patients, treated = _count(flow, "patients"), _count(flow, "patients_with_treatment")
    treatments = _count(flow, "treatments")
    visits, analysed = _count(flow, "visits"), _count(flow, "visits_analysed")
    boxes = [
        {"box": "patients", "column": "main", "count": patients,
         "text": f"Patients\nn = {patients}"},
        _side("patients_without_treatment", "No treatment recorded",
              [("", patients - treated)]),
        {"box": "treatments", "column": "main", "count": treatments,
         "text": f"Treatments (treated nerves)\nn = {treatments} in {treated} patients"},
        _side("visits_excluded", "Visits excluded", _reasons(flow, "visits_excluded")),
        {"box": "visits_analysed", "column": "main", "count": analysed,
         "text": f"Visits analysed\nn = {analysed} of {visits} recorded"},
    ]
    excluded = _reasons(flow, "treatments_excluded", outcome)
    if outcome == "relief":
        assessed = _count(flow, "assessed_for_response", outcome)
        boxes += [
            _side("not_assessed", "Treatments not assessed for response",
                  [(r, n) for r, n in excluded if r != "no_response"]),
            {"box": "assessed_for_response", "column": "main", "count": assessed,
             "text": f"Treatments assessed for response\nn = {assessed}"},
            _side("no_response", "No response", [(r, n) for r, n in excluded
                                                  if r == "no_response"]),
        ]
    else:
        boxes.append(_side("treatments_excluded", "Treatments without an episode", excluded))
    total = _count(flow, "episodes_total", outcome)
    statuses = [f"{STATUS_WORDS[outcome].get(status, _words(status))}: {n}"
                for status, n in _reasons(flow, "episodes", outcome)]
    title = "Relief episodes (responders)" if outcome == "relief" else "Numbness episodes"
    boxes.append({"box": "episodes", "column": "main", "count": total,
                  "text": "\n".join([title, f"n = {total}", *statuses])})
    return pd.DataFrame([box for box in boxes if box is not None],
                        columns=["box", "column", "count", "text"])


def draw_flow(flow: pd.DataFrame, *, outcome: str = "relief", ax=None, **kwargs):
    """Draw :func:`flow_boxes` on ``ax`` (a new figure sized to the boxes when ``None``).

    ``kwargs`` go to matplotlib's ``text`` for every box. Returns the Axes, with the
    boxes as ``ax.flow_boxes``.
    """
    import matplotlib.pyplot as plt

    boxes = flow_boxes(flow, outcome)
    fontsize = float(kwargs.get("fontsize", kwargs.get("size", 7.5)))
    layout = _layout(boxes)
    height = float(layout["bottom"].max()) + 0.5
    if ax is None:
        inch = fontsize * 1.5 / 72                          # one line of text
        figure = plt.figure(figsize=(7.0, max(height * inch, 1.5)))
        ax = figure.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 1)
    ax.set_ylim(height, 0)
    ax.axis("off")
    frame = {"boxstyle": "square,pad=0.6", "facecolor": "white", "edgecolor": "0.25",
             "linewidth": 0.8}
    texts, main_x, previous = {}, 0.3, None
    for i, box in layout.iterrows():
        side = box["column"] == "side"
        texts[i] = ax.text(0.62 if side else main_x, box["middle"], box["text"],
                           **{"ha": "left" if side else "center", "va": "center",
                              "multialignment": "left" if side else "center",
                              "fontsize": fontsize, "bbox": frame, "parse_math": False,
                              **kwargs})
        arrow = {"arrowstyle": "-|>", "color": "0.25", "linewidth": 0.8, "shrinkA": 0,
                 "shrinkB": 0}
        edge = texts[i].get_bbox_patch()           # arrows end on the frame, not the text
        if side:
            ax.annotate("", xy=(0, 0.5), xycoords=edge, xytext=(main_x, box["middle"]),
                        textcoords="data", arrowprops=arrow)
        else:
            if previous is not None:
                ax.annotate("", xy=(0.5, 1), xycoords=edge, xytext=(0.5, 0),
                            textcoords=texts[previous].get_bbox_patch(), arrowprops=arrow)
            previous = i
    ax.flow_boxes = boxes
    return ax


def _layout(boxes: pd.DataFrame) -> pd.DataFrame:
    """Each box's middle and bottom, in lines of text from the top: a side box sits in the
    gap below the main box it branches from, and the gap grows to hold it."""
    lines = boxes["text"].str.count("\n") + 1
    middle, bottom, cursor = [], [], 0.0
    for i, column in enumerate(boxes["column"]):
        size = lines.iloc[i] + 1.5                           # the frame's padding
        if column == "main":
            middle.append(cursor + size / 2)
            cursor += size
            gap = 2.0
            if i + 1 < len(boxes) and boxes["column"].iloc[i + 1] == "side":
                gap = max(gap, lines.iloc[i + 1] + 2.5)
            bottom.append(cursor)
            cursor += gap
        else:
            middle.append(cursor - (lines.iloc[i] + 2.5) / 2)     # the gap's middle
            bottom.append(cursor)
    return boxes.assign(middle=middle, bottom=bottom)
