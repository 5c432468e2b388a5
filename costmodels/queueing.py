"""Queueing delays at a percentile (not the mean).

Prefill (one server, FCFS, Poisson arrivals rate λ, service times S with E[S], E[S²]): M/G/1.
  ρ = λ·E[S];  Pollaczek–Khinchine mean wait  E[W] = λ·E[S²] / (2(1 − ρ)).
  Tail: P(W > t) ≈ ρ·exp(−t·ρ / E[W])  (exact for M/M/1; the standard exponential tail approximation for M/G/1),
  so the q-quantile is  w_q = (E[W]/ρ)·ln(ρ / (1 − q))  when ρ > 1 − q, else 0.
Pooled prefill (c identical servers behind one router that holds the queue, FCFS to the first free server):
  M/G/c with a = λ·E[S] (offered load), ρ = a/c, Erlang C(c, a) = P(wait > 0) of M/M/c,
  Allen–Cunneen mean wait  E[W] ≈ (1 + C_s²)/2 · C(c, a)·E[S] / (c − a),  C_s² = E[S²]/E[S]² − 1,
  tail  P(W > t) ≈ C(c, a)·exp(−t·C(c, a) / E[W]),  so  w_q = (E[W]/C)·ln(C / (1 − q))  when C > 1 − q, else 0.
  Exact for M/M/c (C_s² = 1); at c = 1 it is the M/G/1 formula above (C(1, a) = ρ, E[W] = P–K), so pooling
  never changes a single instance's figure. It credits c pooled instances with more than c times one
  instance's rate at the same TTFT (a request waits for the first of c servers, not for its own).
Round-robin-fed instances (the router deals requests to instances in turn, smooth weighted round-robin: an
  instance with share p of a Poisson stream gets every 1/p-th arrival, Erlang-(1/p) gaps of squared coefficient of
  variation c_a² = p, far less bursty than Poisson): GI/G/1 (and GI/G/c for a batch server's c slots) with c_a² ≤ 1
  by Whitt's Queueing Network Analyzer (W. Whitt, "The Queueing Network Analyzer", Bell System Technical Journal
  62(9):2779–2815, 1983, section on the GI/G/m approximations, building on Kraemer & Langenbach-Belz 1976):
    mean wait  E[W] = g·(c_a² + c_s²)/2 · C·E[S]/(c − a),  g = exp(−2(1 − ρ)(1 − c_a²)² / (3ρ(c_a² + c_s²)))
               (Kraemer–Langenbach-Belz; the Allen–Cunneen / Kingman form times g, g = 1 at c_a² = 1)
    P(W > 0)   σ = C + (c_a² − 1)·C·(1 − ρ)·h,  h = (1 + c_a² + ρc_s²) / (1 + ρ(c_s² − 1) + ρ²(4c_a² + c_s²))
               (QNA's delay probability, written for c = 1 with C = ρ; here with Erlang C in place of ρ for c > 1)
    tail       P(W > t) ≈ σ·exp(−t·σ/E[W]),  so  w_q = (E[W]/σ)·ln(σ/(1 − q)) when σ > 1 − q, else 0.
  At c_a² = 1 it is the M/G/c formula above (g = 1, σ = C), and the functions take the Poisson path unchanged.
  Against the simulator's round-robin replay (tests/planner_serve/test_round_robin_queue.py, k = 1, 2, 4, 8
  instances, ρ 0.3–0.9, fixed and variable service) the p90 wait is within 0.25·E[S] + 15 % of the simulated one;
  the Poisson form overstates it 2–10x for k ≥ 2.
Decode (B_max batch slots, each held for a request's whole decode): offered load a = λ·E[O]·t_step busy slots;
  square-root staffing (Halfin–Whitt): the q-quantile of busy slots ≈ a + z_q·√a must stay ≤ B_max, so
  a_max = ((√(z² + 4B) − z)/2)².
"""

import math
from statistics import NormalDist


def _check_scv(arrival_scv: float) -> None:
    if not 0.0 < arrival_scv <= 1.0:
        raise ValueError(f"arrival_scv must be in (0, 1] (Poisson 1, round-robin share p: p), got {arrival_scv}")


def smooth_arrivals(mean_wait_s: float, delay_prob: float, rho: float, arrival_scv: float,
                    service_scv: float) -> tuple[float, float]:
    """(E[W], P(W > 0)) of a queue fed by arrivals of squared coefficient of variation c_a² ≤ 1, from its Poisson
    figures (Allen–Cunneen mean wait, Erlang C / ρ): the QNA corrections in the module docstring."""
    gap = 1.0 - arrival_scv
    g = math.exp(-2.0 * (1.0 - rho) * gap * gap / (3.0 * rho * (arrival_scv + service_scv)))
    h = (1.0 + arrival_scv + rho * service_scv) / (1.0 + rho * (service_scv - 1.0)
                                                   + rho * rho * (4.0 * arrival_scv + service_scv))
    mean = g * (arrival_scv + service_scv) / (1.0 + service_scv) * mean_wait_s
    return mean, delay_prob * (1.0 - gap * (1.0 - rho) * h)


def _exp_tail_quantile(mean_wait_s: float, delay_prob: float, quantile: float) -> float:
    """q-quantile of a wait with atom 1 − σ at 0 and an exponential tail of mean E[W]/σ."""
    if delay_prob <= 1.0 - quantile:
        return 0.0
    return mean_wait_s / delay_prob * math.log(delay_prob / (1.0 - quantile))


def mg1_wait_quantile_s(rate_per_s: float, mean_service_s: float, second_moment_s2: float, quantile: float,
                        arrival_scv: float = 1.0) -> float:
    """q-quantile of the M/G/1 FCFS waiting time (GI/G/1 with arrival_scv < 1: round-robin-fed); inf when the
    queue is unstable (ρ ≥ 1)."""
    if rate_per_s <= 0:
        return 0.0
    rho = rate_per_s * mean_service_s
    if rho >= 1.0:
        return math.inf
    if arrival_scv != 1.0:
        _check_scv(arrival_scv)
        mean_wait = rate_per_s * second_moment_s2 / (2.0 * (1.0 - rho))
        return _exp_tail_quantile(*smooth_arrivals(mean_wait, rho, rho, arrival_scv,
                                                   second_moment_s2 / mean_service_s ** 2 - 1.0), quantile)
    if rho <= 1.0 - quantile:
        return 0.0
    mean_wait = rate_per_s * second_moment_s2 / (2.0 * (1.0 - rho))
    return mean_wait / rho * math.log(rho / (1.0 - quantile))


def mg1_max_rate(mean_service_s: float, second_moment_s2: float, quantile: float, wait_budget_s: float,
                 arrival_scv: float = 1.0) -> float:
    """Largest arrival rate whose waiting-time q-quantile is ≤ wait_budget_s (0 when the budget is negative)."""
    if wait_budget_s < 0 or mean_service_s <= 0:
        return 0.0
    lo, hi = 0.0, 1.0 / mean_service_s
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mg1_wait_quantile_s(mid, mean_service_s, second_moment_s2, quantile, arrival_scv) <= wait_budget_s:
            lo = mid
        else:
            hi = mid
    return lo


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in M/M/c with c servers and offered load a (1 when a >= c)."""
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k! for k = 0
    for k in range(1, servers):
        term *= offered_load / k
        total += term
    last = term * offered_load / servers * servers / (servers - offered_load)
    return last / (total + last)


def mgc_wait_quantile_s(rate_per_s: float, mean_service_s: float, second_moment_s2: float, quantile: float,
                        servers: int, arrival_scv: float = 1.0) -> float:
    """q-quantile of the M/G/c FCFS waiting time (Allen–Cunneen mean, exponential tail; GI/G/c by QNA with
    arrival_scv < 1: round-robin-fed); inf when unstable."""
    if rate_per_s <= 0:
        return 0.0
    a = rate_per_s * mean_service_s
    if a >= servers:
        return math.inf
    c_wait = erlang_c(servers, a)
    scv = second_moment_s2 / mean_service_s ** 2 - 1.0
    if arrival_scv != 1.0:
        _check_scv(arrival_scv)
        mean_wait = (1.0 + scv) / 2.0 * c_wait * mean_service_s / (servers - a)
        return _exp_tail_quantile(*smooth_arrivals(mean_wait, c_wait, a / servers, arrival_scv, scv), quantile)
    if c_wait <= 1.0 - quantile:
        return 0.0
    mean_wait = (1.0 + scv) / 2.0 * c_wait * mean_service_s / (servers - a)
    return mean_wait / c_wait * math.log(c_wait / (1.0 - quantile))


def mgc_max_rate(mean_service_s: float, second_moment_s2: float, quantile: float, wait_budget_s: float,
                 servers: int, arrival_scv: float = 1.0) -> float:
    """Largest arrival rate at which c pooled servers keep the waiting-time q-quantile <= wait_budget_s."""
    if wait_budget_s < 0 or mean_service_s <= 0 or servers < 1:
        return 0.0
    lo, hi = 0.0, servers / mean_service_s
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mgc_wait_quantile_s(mid, mean_service_s, second_moment_s2, quantile, servers,
                               arrival_scv) <= wait_budget_s:
            lo = mid
        else:
            hi = mid
    return lo


def normal_quantile(q: float) -> float:
    return NormalDist().inv_cdf(q)


def busy_slots_quantile(offered_load: float, quantile: float) -> float:
    """q-quantile of busy slots under square-root staffing: a + z·√a."""
    return offered_load + normal_quantile(quantile) * math.sqrt(max(offered_load, 0.0))


def max_offered_load(slots: float, quantile: float) -> float:
    """Largest offered load a with a + z_q·√a ≤ slots."""
    if slots <= 0:
        return 0.0
    z = max(normal_quantile(quantile), 0.0)
    root = (math.sqrt(z * z + 4.0 * slots) - z) / 2.0
    return root * root
