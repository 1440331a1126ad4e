"""One BLAS thread for the training fits, so a rerun gives the same bytes on any machine setting.

BLAS splits its reductions by thread count, and the last bits of a sum follow the split: the
synthetic-voice head's coefficients moved by 1e-13 between 1 and 2 threads (2026-12-06), enough
for a different weights file. The fits are small; one thread costs seconds, not minutes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run with BLAS limited to one thread (threadpoolctl), restored after."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return run
