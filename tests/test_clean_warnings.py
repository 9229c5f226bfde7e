"""The suite turns deprecations raised from this project's own modules into errors
(pyproject `filterwarnings`), and leaves other libraries' warnings as warnings."""

import warnings

import pytest


def warn_from(module: str) -> None:
    """A DeprecationWarning attributed to `module`, as a deprecated call in it would raise."""
    warnings.warn_explicit("old API", DeprecationWarning, f"{module}.py", 1, module=module)


@pytest.mark.parametrize("module", ["pq_io_manager", "pq_io_manager.storage", "demo.assets"])
def test_a_deprecation_from_our_modules_fails_the_test(module: str) -> None:
    with pytest.raises(DeprecationWarning, match="old API"):
        warn_from(module)


@pytest.mark.parametrize("module", ["dagster._core.definitions", "pq_io_manager_plugin", "tests"])
def test_a_deprecation_from_elsewhere_only_warns(module: str) -> None:
    with pytest.warns(DeprecationWarning, match="old API"):
        warn_from(module)
