"""A pytest plugin for scripts/mutate.py (`-p tests._mutation_order`, set in pyproject's [tool.mutmut]): each
mutant is run against the tests that call the mutated function and stops at the first failure, so the fast unit
tests go first and the in-process training runs last."""

SLOW = (
    "tests/test_mutants_training.py",
    "tests/test_mutants_kinds.py",
    "tests/test_mutants_world.py",
    "tests/test_evaluate.py::test_iwae_approaches_the_exact_likelihood",
)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: any(item.nodeid.startswith(slow) for slow in SLOW))
