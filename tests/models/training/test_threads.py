"""The training fits' one BLAS thread."""

from __future__ import annotations

from threadpoolctl import threadpool_info

from models.training.threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_one_blas_thread_holds_inside_the_call_and_is_restored_after() -> None:
    before = _blas_threads()

    @one_blas_thread
    def fit(scale: float, *, offset: float) -> tuple[list[int], float]:
        return _blas_threads(), scale * 2 + offset

    inside, value = fit(3.0, offset=1.0)
    assert value == 7.0 and fit.__name__ == "fit"
    assert inside and set(inside) == {1}
    assert _blas_threads() == before
