"""Print what the proof of no leak checked at the end of the run (even without `-s`)."""

from __future__ import annotations

import pytest

from tests.property.test_no_leak import TALLIES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = {leg: tally for leg, tally in TALLIES.items() if tally.examples}
    if ran:
        terminalreporter.section("proof of no leak")
        for leg, tally in ran.items():
            terminalreporter.write_line(f"{leg}: {tally.line()}")
