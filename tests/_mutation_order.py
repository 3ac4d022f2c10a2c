"""A pytest plugin for scripts/mutate.py (`-p tests._mutation_order`, set in pyproject's [tool.mutmut]): each
mutant is run against the tests that call the mutated function and stops at the first failure, so the unit tests
go first and those that train in process (the loop's and the kinds', in tests/training/ and tests/kinds/) last."""

LAST = ("tests/training/", "tests/kinds/")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.nodeid.startswith(LAST))
