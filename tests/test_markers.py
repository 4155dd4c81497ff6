"""tests/markers.py fails a test that runs a command or trains without saying so."""

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import subprocess
import sys

import pytest

pytest_plugins = ["tests.markers"]


def test_unmarked():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.mark.cli
def test_marked():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_a_tool_a_library_starts_needs_no_marker():
    subprocess.run(["true"], check=True)
'''


@pytest.mark.cli  # the marked inner test runs a command
def test_a_command_run_without_the_cli_marker_fails(pytester):
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_unmarked runs a command*mark it*@pytest.mark.cli*"])
