"""``python -m regen.cli``: the ``regen`` command."""

from regen.cli import main

main()
