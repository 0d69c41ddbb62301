"""``python -m inferencesh`` is the ``infsh`` command."""

from .cli import main

raise SystemExit(main())
