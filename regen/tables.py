"""The three follow-up tables, declared once.

Every column regen reads is declared here with its kind, whether it is
required, and its allowed values or range. Reading (:mod:`regen.io`),
validation (:mod:`regen.validation`), the simulator and the data dictionary in
``data/README.md`` all work from these declarations, so a rule changes in one
place only.

Kinds
-----
``id``        text identifier; surrounding whitespace is stripped (with a warning)
``text``      free text, normalised to lower snake case (``Greater Occipital`` →
              ``greater_occipital``)
``category``  one of ``allowed`` (any case)
``boolean``   0/1, true/false, yes/no, y/n (any case)
``integer``   a whole number
``number``    a number; a ``;``-separated file may use decimal commas
``date``      an ISO date (``2024-03-15``) or an Excel date serial
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "KNOWN_NERVES",
    "PATIENTS",
    "TABLES",
    "TREATMENTS",
    "VISITS",
    "Column",
    "Table",
    "data_dictionary",
]

KNOWN_NERVES: tuple[str, ...] = (
    "greater_occipital",
    "lesser_occipital",
    "third_occipital",
    "supraorbital",
    "supratrochlear",
    "auriculotemporal",
    "infrapatellar_saphenous",
    "anterior_femoral_cutaneous",
    "intercostal",
)

KINDS = ("id", "text", "category", "boolean", "integer", "number", "date")


@dataclass(frozen=True)
class Column:
    """One declared column of a follow-up table.

    Parameters
    ----------
    name : str
        Column name as it must appear in the file (lower snake case; headers
        are matched case-insensitively with spaces read as underscores).
    kind : str
        One of ``id, text, category, boolean, integer, number, date``.
    required : bool
        The column must exist and every row must have a value.
    description : str
        What the column means, for the data dictionary.
    allowed : tuple of str
        For ``category`` columns: the allowed values (matched in any case).
    aliases : tuple of (str, str)
        Other spellings accepted for an allowed value, e.g. ``("female", "F")``.
    minimum, maximum : float, optional
        Allowed range for numbers; ``minimum_inclusive=False`` makes the lower
        bound strict (``distance_mm > 0``).
    descriptive : bool
        A covariate no model uses unless asked (``bmi``): a value outside its range
        is set missing with a warning instead of refusing the cohort
        (``read_cohort(strict=True)``, ``regen validate --strict``: refused).
    """

    name: str
    kind: str
    required: bool = False
    description: str = ""
    allowed: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    minimum_inclusive: bool = True
    descriptive: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}; use one of {KINDS}")

    @property
    def rule(self) -> str:
        """The column's allowed values in words, as used in messages."""
        if self.allowed:
            return "one of " + ", ".join(self.allowed)
        low = high = ""
        if self.minimum is not None:
            low = f"{'≥' if self.minimum_inclusive else '>'} {self.minimum:g}"
        if self.maximum is not None:
            high = f"≤ {self.maximum:g}"
        if low and high and self.minimum_inclusive:
            return f"between {self.minimum:g} and {self.maximum:g}"
        return " and ".join(part for part in (low, high) if part)


@dataclass(frozen=True)
class Table:
    """A follow-up table: its name, key column, and declared columns."""

    name: str
    key: str
    description: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name!r} declares no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


PATIENTS = Table(
    name="patients",
    key="patient_id",
    description="One row per patient.",
    columns=(
        Column("patient_id", "id", required=True,
               description="Pseudonymous study id, unique. Never a name or record number."),
        Column("sex", "category", allowed=("F", "M", "other", "unknown"),
               aliases=(("female", "F"), ("male", "M")),
               description="Also accepted: female, male."),
        Column("birth_year", "integer", minimum=1900, maximum=2100,
               description="With `treated_on`, gives the age at treatment."),
        Column("diabetes", "boolean"),
        Column("smoker", "boolean"),
        Column("bmi", "number", minimum=12, maximum=80, descriptive=True,
               description="Body-mass index, kg/m²; a value outside 12–80 is set missing with "
                           "a warning (refused with --strict)."),
    ),
)

TREATMENTS = Table(
    name="treatments",
    key="treatment_id",
    description="One row per nerve treated in a procedure.",
    columns=(
        Column("treatment_id", "id", required=True, description="Unique."),
        Column("patient_id", "id", required=True, description="Must exist in patients."),
        Column("nerve", "text", required=True,
               description="Nerve treated, e.g. " + ", ".join(KNOWN_NERVES)
               + "; other nerves are allowed with a warning."),
        Column("side", "category", allowed=("left", "right", "midline"),
               description="A retreatment is a later treatment of the same patient, nerve and side."),
        Column("treated_on", "date",
               description="Date of the freeze; required when visits are dated."),
        Column("procedure", "text", description="e.g. cryo, cryo_with_decompression; default cryo."),
        Column("distance_mm", "number", minimum=0, minimum_inclusive=False,
               description="Freeze site to the target skin territory, mm; used by the kinetics model."),
        Column("age", "number", minimum=0, maximum=120,
               description="Age at treatment, years; derived from birth_year when absent."),
    ),
)

VISITS = Table(
    name="visits",
    key="treatment_id",
    description="One row per assessment of a treated nerve.",
    columns=(
        Column("treatment_id", "id", required=True, description="Must exist in treatments."),
        Column("patient_id", "id",
               description="Optional; when given, it must be the patient of the visit's treatment."),
        Column("day", "integer",
               description="Days since the treatment (day 0); day ≤ 0 is a baseline visit. "
               "Either `day` or `visit_date` is required."),
        Column("visit_date", "date", description="Date of the visit; gives `day` with `treated_on`."),
        Column("numb", "boolean",
               description="Numbness present in the nerve's territory (numbness outcome)."),
        Column("numbness", "number", minimum=0, maximum=10, description="Graded numbness, 0–10."),
        Column("pain", "number", minimum=0, maximum=10,
               description="Numeric pain rating, 0–10 (relief outcome)."),
        Column("headache_days", "number", minimum=0, maximum=31, description="Per 30 days."),
    ),
)

TABLES: dict[str, Table] = {table.name: table for table in (PATIENTS, TREATMENTS, VISITS)}

#: Columns of the visits table that hold an assessment (compared for duplicates).
VISIT_SCORES: tuple[str, ...] = ("numb", "numbness", "pain", "headache_days")


def data_dictionary() -> str:
    """The data dictionary of the three tables as Markdown.

    Returns
    -------
    str
        One Markdown table per follow-up table, generated from the
        declarations in this module (``data/README.md`` embeds it).

    Examples
    --------
    >>> from regen.tables import data_dictionary
    >>> print(data_dictionary().splitlines()[0])
    ### patients
    """
    blocks = []
    for table in TABLES.values():
        lines = [
            f"### {table.name}",
            "",
            table.description,
            "",
            "| column | kind | required | allowed | meaning |",
            "|---|---|---|---|---|",
        ]
        for column in table.columns:
            required = "yes" if column.required else "no"
            lines.append(
                f"| {column.name} | {column.kind} | {required} | {column.rule} | {column.description} |"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
