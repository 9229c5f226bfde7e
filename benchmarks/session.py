"""Everything one store's scenarios share: the target, sizes and initialised contenders."""

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.contenders import ALTERNATIVES, FACTORIES, OURS, Contender
from benchmarks.data import Sizes
from benchmarks.measure import Row, brief_error, mark_unsupported
from benchmarks.targets import RequestCounter, Target


@dataclass
class Session:
    """One store's benchmark state; `counted` contenders talk through the counting proxy."""

    target: Target
    sizes: Sizes
    workdir: Path
    timed: dict[str, Contender] = field(default_factory=dict)
    counted: dict[str, Contender] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def ours(self) -> Contender:
        """Our IO manager (timed endpoint)."""
        return self.timed[OURS]

    @property
    def counts_requests(self) -> bool:
        """Whether requests are counted (only where a counting proxy runs: moto)."""
        return self.target.proxy is not None

    def alternatives(self) -> list[Contender]:
        """The alternatives that could be initialised on this store."""
        return [self.timed[name] for name in ALTERNATIVES if name in self.timed]

    def unavailable_rows(self, scenario: str) -> list[Row]:
        """n/a rows for alternatives that cannot run on this store at all."""
        return [
            mark_unsupported(scenario, self.target.name, name, reason)
            for name, reason in self.unavailable.items()
        ]

    def storage_options(self, counted: bool = False) -> dict[str, Any]:
        """Keyword arguments giving raw polars access to the store."""
        options = self.target.storage_options(counted)
        return {} if options is None else {"storage_options": options}

    def raw_path(self, *parts: str) -> str:
        """A path below `{root}/raw`, its local parent directory created."""
        path = self.target.uri("raw", *parts)
        if not self.target.is_s3:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def count(self, action: Callable[[], object]) -> RequestCounter | None:
        """Run `action` once and count its requests (None on a local store)."""
        if self.target.proxy is None:
            return None
        with self.target.count_requests() as counter:
            result = action()
            if isinstance(result, pl.LazyFrame):
                result.collect()
        return counter


def open_session(
    stack: contextlib.ExitStack, target: Target, sizes: Sizes, workdir: Path
) -> Session:
    """Initialise every contender twice (timed and counted); record the ones that cannot run."""
    session = Session(target, sizes, workdir)
    for name, factory in FACTORIES.items():
        try:
            session.timed[name] = factory(stack, target, False)
            if target.is_s3:
                session.counted[name] = factory(stack, target, True)
        except Exception as error:
            if name == OURS:
                raise
            session.unavailable[name] = brief_error(error)
    return session
