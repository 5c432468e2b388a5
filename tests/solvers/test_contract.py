"""The same tiny problems with known optima, on every backend: status, objective, bound and gap.

Each optimum is recomputed here by enumeration (integer problems) or by hand (LPs, arithmetic in comments).
CP-SAT takes integer-only problems; for continuous ones the test checks that it refuses rather than rounds.
"""

import itertools

import pulp
import pytest

import solvers
from costmodels.errors import SpecError
from solvers import BACKENDS, SolverOptions, SolveStatus, solve_pulp
from solvers.pulp_model import constraints

OPTIONS = dict(threads=1, seed=7, time_limit_s=30.0, relative_gap=0.0)


def lp():
    """max 3x + 2y + 1  s.t. x + y <= 4, x + 3y <= 6, x <= 3, x, y >= 0.
    Vertices: (0,0)=1, (3,0)=10, (3,1)=12, (2,4/3... no: x+y=4 & x+3y=6 -> (3,1)), (0,2)=5. Optimum 12 at (3,1)."""
    p = pulp.LpProblem("lp", pulp.LpMaximize)
    x, y = pulp.LpVariable("x", 0), pulp.LpVariable("y", 0)
    p += 3 * x + 2 * y + 1
    p += x + y <= 4, "c1"
    p += x + 3 * y <= 6, "c2"
    p += x <= 3, "c3"
    return p, 12.0


KNAPSACK = ((8, 5), (11, 7), (6, 4), (4, 3))  # (value, weight), capacity 14


def knapsack():
    """max sum v_i b_i + 2, sum w_i b_i <= 14, b binary; its LP relaxation (22.4 + 2) is above the optimum."""
    p = pulp.LpProblem("knapsack", pulp.LpMaximize)
    b = [pulp.LpVariable(f"b{i}", cat="Binary") for i in range(len(KNAPSACK))]
    p += pulp.lpSum(v * bi for (v, _), bi in zip(KNAPSACK, b, strict=True)) + 2
    p += pulp.lpSum(w * bi for (_, w), bi in zip(KNAPSACK, b, strict=True)) <= 14, "capacity"
    best = max(sum(v for (v, _), c in zip(KNAPSACK, choice, strict=True) if c)
               for choice in itertools.product((0, 1), repeat=len(KNAPSACK))
               if sum(w for (_, w), c in zip(KNAPSACK, choice, strict=True) if c) <= 14)
    return p, best + 2.0


def covering():
    """min 3x + 5y + 2  s.t. 2x + 3y >= 11, x, y integer in [0, 10]."""
    p = pulp.LpProblem("covering", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 10, cat="Integer")
    y = pulp.LpVariable("y", 0, 10, cat="Integer")
    p += 3 * x + 5 * y + 2
    p += 2 * x + 3 * y >= 11, "cover"
    best = min(3 * a + 5 * b for a in range(11) for b in range(11) if 2 * a + 3 * b >= 11)
    return p, best + 2.0


def mixed():
    """min x + z  s.t. x + z >= 2.5, z <= 0.3, x integer >= 0, z >= 0: x = 2 needs z = 0.5 > 0.3, so x = 3, z = 0."""
    p = pulp.LpProblem("mixed", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, cat="Integer")
    z = pulp.LpVariable("z", 0, 0.3)
    p += x + z
    p += x + z >= 2.5, "need"
    return p, 3.0


def infeasible_lp():
    p = pulp.LpProblem("infeasible_lp", pulp.LpMinimize)
    x, y = pulp.LpVariable("x", 0), pulp.LpVariable("y", 0)
    p += x + y
    p += x + y >= 5, "low"
    p += x + y <= 3, "high"
    return p, None


def infeasible_integer():
    """2x == 3 has the LP solution x = 1.5 but no integer one."""
    p = pulp.LpProblem("infeasible_integer", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 5, cat="Integer")
    p += x
    p += 2 * x == 3, "odd"
    return p, None


def unbounded(cat):
    p = pulp.LpProblem(f"unbounded_{cat.lower()}", pulp.LpMaximize)
    x, y = pulp.LpVariable("x", 0, cat=cat), pulp.LpVariable("y", 0, cat=cat)
    p += x + y
    p += x - y <= 2, "c"
    return p, None


INTEGER_ONLY = {"knapsack": knapsack, "covering": covering, "infeasible_integer": infeasible_integer}
NEEDS_CONTINUOUS = {"lp": lp, "mixed": mixed, "infeasible_lp": infeasible_lp,
                    "unbounded_lp": lambda: unbounded("Continuous")}
EXPECTED = {"knapsack": SolveStatus.OPTIMAL, "covering": SolveStatus.OPTIMAL, "lp": SolveStatus.OPTIMAL,
            "mixed": SolveStatus.OPTIMAL, "infeasible_lp": SolveStatus.INFEASIBLE,
            "infeasible_integer": SolveStatus.INFEASIBLE, "unbounded_lp": SolveStatus.UNBOUNDED,
            "unbounded_milp": SolveStatus.UNBOUNDED}
CASES = [(b, name) for b in BACKENDS for name in sorted(EXPECTED)]
UNAVAILABLE = {b: solvers.backends.unavailable_reason(b) for b in BACKENDS}


def options(backend):
    if UNAVAILABLE[backend]:
        pytest.skip(f"backend {backend} cannot run here (test_backends.py fails on this): {UNAVAILABLE[backend]}")
    return SolverOptions(backend=backend, **OPTIONS)


def build(name):
    if name == "unbounded_milp":
        return unbounded("Integer")
    return {**INTEGER_ONLY, **NEEDS_CONTINUOUS}[name]()


@pytest.mark.parametrize("backend, name", CASES)
def test_known_outcome(backend, name):
    problem, optimum = build(name)
    opts = options(backend)
    if backend == "cpsat" and name not in INTEGER_ONLY:
        # CP-SAT must refuse models it would have to change (continuous variables or infinite bounds)
        with pytest.raises(SpecError, match="backend 'cpsat' solves integer models only"):
            solve_pulp(problem, opts)
        return
    result = solve_pulp(problem, opts)
    assert result.status is EXPECTED[name], result.message
    assert result.backend == backend and result.backend_version
    assert result.solve_time_s >= 0
    if optimum is None:
        assert result.objective is None and result.bound is None and result.gap is None and result.values == {}
        return
    assert result.objective == pytest.approx(optimum, abs=1e-6)
    assert result.bound == pytest.approx(optimum, abs=1e-6)
    assert result.gap == pytest.approx(0.0, abs=1e-6)
    # the reported values reproduce the objective and are also stored on the PuLP variables
    assert pulp.value(problem.objective) == pytest.approx(optimum, abs=1e-6)
    assert sorted(result.values) == sorted(v.name for v in problem.variables())
    for v in problem.variables():
        assert v.varValue == pytest.approx(result.values[v.name])
    for c in constraints(problem):
        assert c.valid(eps=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_options_same_answer(backend):
    first, _ = knapsack()
    second, _ = knapsack()
    a, b = solve_pulp(first, options(backend)), solve_pulp(second, options(backend))
    assert (a.status, a.objective, a.bound, a.values) == (b.status, b.objective, b.bound, b.values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_to_json_is_the_plan_solver_block(backend):
    problem, optimum = covering()
    block = solve_pulp(problem, options(backend)).to_json()
    assert block == {"backend": backend, "backend_version": block["backend_version"], "status": "optimal",
                     "objective": pytest.approx(optimum), "bound": pytest.approx(optimum), "gap": pytest.approx(0.0)}
