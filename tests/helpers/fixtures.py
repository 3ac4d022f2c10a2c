"""Files the tests read (tests/fixtures/): a run directory written by vaelab 0.1.0."""

from pathlib import Path

OLD_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "run-0.1.0"
