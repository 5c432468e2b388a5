"""One readable line each for a predicted block's interval, regime and extrapolation flags (`parplan explain`)."""

UNITS = {"_per_s_per_gpu": " /s/GPU", "_per_s": " /s", "_s": " s"}
"""metric-name suffix -> unit shown (longest suffix first)"""


def _unit(metric: str) -> str:
    for suffix, unit in UNITS.items():
        if metric.endswith(suffix):
            return unit
    return ""


def _span(metric: str, bounds: dict) -> str:
    return f"{metric} {bounds['low']:.4g}-{bounds['high']:.4g}{_unit(metric)}"


def confidence_lines(predicted: dict, indent: str = "  ", width: int = 11) -> list[str]:
    """Three lines (interval, regime, extrapolated); none when the block carries no confidence fields."""
    interval, regime = predicted.get("interval"), predicted.get("regime")
    if not interval or not regime:
        return []
    level = f"{interval['level'] * 100:.0f}%"
    spans = [_span(k, v) for k, v in sorted(interval.items()) if isinstance(v, dict)]
    if regime["rows"]:
        support = (f"{regime['rows']} calibration rows (matched {regime['matched']}), median error "
                   f"{regime['median_error'] * 100:+.1f}%, predicted/measured p10-p90 "
                   f"{regime['ratio_p10']:.3f}-{regime['ratio_p90']:.3f}"
                   + ("; interval widened to the prior (extrapolated)" if regime["prior"] else ""))
    else:
        support = "too few calibration rows: the wider prior sets the interval"
    flags = predicted.get("extrapolated") or []
    extra = _robust_line(predicted.get("robust") or {}, indent, width)
    return extra + [f"{indent}{_label('interval', width)}{level}: " + "; ".join(spans),
            f"{indent}{_label('regime', width)}{regime['key']}: {support}",
            f"{indent}{_label('extrapolated', width)}"
            + ("; ".join(flags) if flags else "no (calibration rows cover it)")]


def _robust_line(robust: dict, indent: str, width: int) -> list[str]:
    """A robust serve plan: the user's SLOs, the latency factor and the SLOs it was planned against."""
    if "latency_factor" not in robust:
        return []
    g, ttft, tpot = robust["latency_factor"], robust["ttft_slo_s"] * 1e3, robust["tpot_slo_s"] * 1e3
    return [f"{indent}{_label('robust', width)}SLOs divided by the 90th-percentile latency factor {g:.3f}: "
            f"TTFT {ttft:.4g} ms, TPOT {tpot:.4g} ms planned as {ttft / g:.4g} / {tpot / g:.4g} ms"]


def _label(name: str, width: int) -> str:
    return name.ljust(width) if len(name) < width else name + " "


def alternative_note(alt: dict) -> str:
    """' [P(faster) 34%, within noise]' for an alternative that carries a probability; '' otherwise."""
    noise = ", within noise" if alt.get("within_noise") else ""
    if "probability_faster" in alt:
        return f" [P(faster) {alt['probability_faster'] * 100:.0f}%{noise}]"
    if "probability_better" in alt:
        return f" [P(more goodput) {alt['probability_better'] * 100:.0f}%{noise}]"
    return ""
