"""Keep the data dictionary in ``data/README.md`` in step with :mod:`regen.tables`.

Run as ``python -m regen.dictionary data/README.md`` after changing a declaration; a
test checks that the README holds :func:`regen.tables.data_dictionary`. (It lives
here, not in ``tables``, because writing goes through :mod:`regen._write`, which
sits above the table declarations.)
"""

from __future__ import annotations

from regen._write import atomic_open
from regen.tables import data_dictionary

__all__ = ["update_readme"]

_BEGIN = "<!-- generated from regen/tables.py by regen.tables.data_dictionary(); tests check it -->\n"
_END = "<!-- end of generated dictionary -->"


def update_readme(path: str) -> None:
    """Rewrite the generated data dictionary inside a Markdown file (between its markers).

    Run as ``python -m regen.dictionary data/README.md`` after changing a declaration.
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    start, end = text.index(_BEGIN) + len(_BEGIN), text.index(_END)
    with atomic_open(path, "w") as handle:  # a document of the repository: no manifest
        handle.write(text[:start] + data_dictionary() + text[end:])


if __name__ == "__main__":  # pragma: no cover
    import sys

    update_readme(sys.argv[1] if len(sys.argv) > 1 else "data/README.md")
