"""Backend selection, bounds on problems stopped early, CP-SAT models, and the native-library load order."""

import random
import subprocess
import sys

import pulp
import pytest

import solvers
from costmodels.errors import SpecError
from solvers import BACKENDS, SolverOptions, SolveStatus, relative_gap, solve_cpsat, solve_pulp


def test_backends_in_preference_order_and_all_available_here():
    assert BACKENDS == ("highs", "cbc", "cpsat")
    reasons = {b: solvers.backends.unavailable_reason(b) for b in BACKENDS}
    assert solvers.available_backends() == BACKENDS, reasons


def with_options(backend, **kwargs):
    reason = solvers.backends.unavailable_reason(backend)
    if reason:
        pytest.skip(f"backend {backend} cannot run here: {reason}")
    return SolverOptions(backend=backend, **kwargs)


def test_unknown_backend_is_a_spec_error_listing_the_valid_ones():
    problem = pulp.LpProblem("p", pulp.LpMinimize)
    with pytest.raises(SpecError, match="unknown solver backend 'gurobi'; valid: highs, cbc, cpsat"):
        solve_pulp(problem, SolverOptions(backend="gurobi"))


def _knapsack(n=40, seed=3):
    rng = random.Random(seed)
    items = [(rng.randint(10, 60), rng.randint(5, 40)) for _ in range(n)]
    capacity = sum(w for _, w in items) // 3
    p = pulp.LpProblem("knapsack", pulp.LpMaximize)
    b = [pulp.LpVariable(f"b{i:02d}", cat="Binary") for i in range(n)]
    p += pulp.lpSum(v * x for (v, _), x in zip(items, b, strict=True))
    p += pulp.lpSum(w * x for (_, w), x in zip(items, b, strict=True)) <= capacity, "capacity"
    # exact optimum by dynamic programming over capacity
    best = [0] * (capacity + 1)
    for v, w in items:
        for c in range(capacity, w - 1, -1):
            best[c] = max(best[c], best[c - w] + v)
    return p, best[capacity]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bound_brackets_the_optimum_when_a_gap_is_allowed(backend):
    problem, optimum = _knapsack()
    result = solve_pulp(problem, with_options(backend, relative_gap=0.05, time_limit_s=20))
    assert result.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert result.objective <= optimum + 1e-6 <= result.bound + 2e-6
    assert result.gap == pytest.approx(relative_gap(result.objective, result.bound))
    assert result.gap <= 0.05 + 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_objective_is_a_feasibility_problem(backend):
    problem = pulp.LpProblem("feasibility", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 4, cat="Integer")
    problem += 3 * x >= 7, "c"
    result = solve_pulp(problem, with_options(backend))
    assert result.status is SolveStatus.OPTIMAL and result.values["x"] >= 7 / 3
    assert result.objective == 0


def test_cpsat_refuses_non_integral_coefficients():
    problem = pulp.LpProblem("p", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 4, cat="Integer")
    problem += x
    problem += 1.5 * x >= 2, "half"
    with pytest.raises(SpecError, match="'half' has non-integral coefficients"):
        solve_pulp(problem, with_options("cpsat"))


def test_cpsat_refuses_unbounded_integer_variables():
    problem = pulp.LpProblem("p", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, cat="Integer")
    problem += x
    with pytest.raises(SpecError, match="'x' needs finite bounds"):
        solve_pulp(problem, with_options("cpsat"))


def test_cpsat_keeps_a_fractional_objective_exact():
    problem = pulp.LpProblem("p", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 10, cat="Integer")
    y = pulp.LpVariable("y", 0, 10, cat="Integer")
    problem += 0.5 * x + 0.75 * y + 0.125
    problem += x + y >= 3, "c"
    result = solve_pulp(problem, with_options("cpsat"))
    assert result.objective == pytest.approx(1.625) and result.values == {"x": 3.0, "y": 0.0}


def test_solve_cpsat_on_a_native_model():
    with_options("cpsat")
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    xs = {f"x{i}": model.new_int_var(0, 3, f"x{i}") for i in range(3)}
    model.add(sum(xs.values()) <= 5)
    model.add_all_different(list(xs.values()))
    model.maximize(3 * xs["x0"] + 2 * xs["x1"] + xs["x2"])
    # by enumeration: distinct values in 0..3 summing to <= 5
    import itertools
    best = max(3 * a + 2 * b + c for a, b, c in itertools.permutations(range(4), 3) if a + b + c <= 5)
    result = solve_cpsat(model, SolverOptions(backend="cpsat", seed=1), xs)
    assert result.status is SolveStatus.OPTIMAL and result.objective == best == result.bound
    assert sorted(result.values) == ["x0", "x1", "x2"] and result.gap == 0.0


def test_solve_cpsat_reports_infeasible():
    with_options("cpsat")
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    x = model.new_int_var(0, 3, "x")
    model.add(2 * x == 3)
    result = solve_cpsat(model, SolverOptions(backend="cpsat"))
    assert result.status is SolveStatus.INFEASIBLE and result.objective is None


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("first, second", [("highspy", "ortools.sat.python.cp_model"),
                                           ("ortools.sat.python.cp_model", "highspy")])
def test_highspy_and_ortools_load_in_one_process_in_either_order(first, second):
    """Fails with highspy >= 1.13, whose separate libhighs.so.1 clashes with the one inside ortools."""
    done = _run(f"import {first}\nimport {second}\nimport pulp\nprint('ok')")
    assert done.returncode == 0 and done.stdout.strip() == "ok", (
        "highspy and ortools cannot share a process: pin highspy<1.13 (see solvers/native.py)\n" + done.stderr[-400:])


def test_a_backend_that_cannot_load_is_reported_not_crashed():
    code = ("from ortools.sat.python import cp_model\nimport solvers\n"
            "from costmodels.errors import SolverUnavailableError\n"
            "print(solvers.backends.unavailable_reason('highs') or 'ok')\n")
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok" or "pip install 'highspy<1.13'" in done.stdout
