"""A small synthetic residual table for the support tests."""

from planner.confidence.residuals import Residual, ResidualTable


def row(i: int, *, framework: str = "megatron-zero1", scale: str = "dp<=64", context: str = "ctx<=4k",
        family: str = "gpu-a", arch: str = "dense", dtype: str = "bf16", size: int = 32, length: int = 4096,
        err: float = 0.0, target: str = "train", metric: str = "step_time_s") -> Residual:
    return Residual(label=f"r{i}", source="test", target=target, metric=metric, arch=arch, dtype=dtype,
                    framework=framework, scale=scale, context=context, family=family, size=size, length=length,
                    log_error=err, fit_error=err, loo=True)


def table() -> ResidualTable:
    """gpu-a: 6 Megatron ZeRO-1 rows (dp 32, 4k) and 3 torchtitan ZeRO-3 rows (dp up to 128, 8k);
    gpu-b: 2 rows; serving: 6 legacy-engine rows on gpu-a."""
    errs = (-0.04, -0.02, 0.0, 0.01, 0.03, 0.05)
    rows = [row(i, err=e) for i, e in enumerate(errs)]
    rows += [row(10 + i, framework="torchtitan-zero3", scale="dp<=512", context="ctx<=16k", size=s, length=8192,
                 err=e) for i, (s, e) in enumerate(((8, 0.1), (64, -0.1), (128, 0.2)))]
    rows += [row(20 + i, family="gpu-b", err=e) for i, e in enumerate((0.01, -0.01))]
    rows += [row(30 + i, target="serve", metric=m, framework="legacy", scale="tp<=8", size=8, length=2048, err=e)
             for i, (m, e) in enumerate((("prefill_s", 0.05), ("decode_step_s", -0.05)) * 3)]
    return ResidualTable(rows=tuple(rows), families={"gpu-a2": "gpu-a"})
