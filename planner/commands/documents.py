"""`parplan validate`, `diff`, `explain` and `export`: commands that work on any plan document.

Exit codes: validate 0 valid / 1 problems found / 2 unreadable; diff 0 same / 1 different or a threshold
crossed / 2 error; explain and export 0 / 2 (unknown format lists the planner's formats).
"""

import click

from planner import documents
from planner.commands.common import write_output
from planner.diff import diff_plans, format_diff, parse_threshold
from planner.plan import dumps_canonical, load_plan

_plan_path = click.Path(dir_okay=False, path_type=str)


def _write_text(text: str, output: str | None) -> None:
    """Text to stdout (no -o, or -o -) or atomically to a file."""
    if not text.endswith("\n"):
        text += "\n"
    write_output(text, "-" if output is None else output)


@click.command("validate")
@click.argument("plan_path", metavar="PLAN", type=_plan_path)
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write a JSON report {plan, valid, problems} to FILE ('-' for stdout).")
@click.pass_context
def validate(ctx, plan_path, output):
    """Re-check PLAN: JSON Schema, inputs digest, then the planner's independent check with the cost models.

    Exit 0 when valid, 1 when problems were found, 2 when PLAN cannot be read.
    """
    plan = load_plan(plan_path, check_schema=False)
    problems = documents.validate_plan(plan)
    if output is not None:
        _write_text(dumps_canonical({"plan": plan_path, "valid": not problems, "problems": problems}), output)
    elif problems:
        click.echo(f"{plan_path}: {len(problems)} problem{'s' if len(problems) != 1 else ''} found")
        for problem in problems:
            click.echo(f"  - {problem}")
    else:
        click.echo(f"{plan_path}: valid ({plan.kind} plan, schema version {plan['schema_version']}, "
                   f"inputs {plan['inputs']['inputs_digest'][:12]})")
    ctx.exit(1 if problems else 0)


@click.command("diff")
@click.argument("plan_a", metavar="A", type=_plan_path)
@click.argument("plan_b", metavar="B", type=_plan_path)
@click.option("--fail-on", "fail_on", multiple=True, metavar="EXPR",
              help="PATH:[+|-]NUMBER[%] (repeatable): '+' fails when B exceeds A by more than NUMBER, '-' when it "
                   "falls by more, no sign either way; '%' makes NUMBER relative to |A|. Examples: "
                   "predicted.step_time_s:+2%  predicted.mfu:-1%  predicted.max_load_ratio:+0.05. "
                   "PATH:[+|-]interval uses A's own 80% prediction interval of that metric as the limit "
                   "(predicted.step_time_s:+interval). With thresholds "
                   "the exit status is 1 only when one is crossed; without them, when anything differs.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the diff as JSON {equal, changes, thresholds, threshold_violations} to FILE "
                   "('-' for stdout).")
@click.pass_context
def diff(ctx, plan_a, plan_b, fail_on, output):
    """Show what changed from plan A to plan B: decisions first, then metric deltas (provenance ignored).

    Exit 0 when equal, 1 when different (or, with --fail-on, when a threshold is crossed), 2 on error.
    """
    thresholds = [parse_threshold(expr) for expr in fail_on]
    result = diff_plans(load_plan(plan_a), load_plan(plan_b), thresholds)
    if output is None:
        click.echo(format_diff(result, label_a=plan_a, label_b=plan_b))
    else:
        _write_text(dumps_canonical(result), output)
    failed = bool(result["threshold_violations"]) if thresholds else not result["equal"]
    ctx.exit(1 if failed else 0)


@click.command("explain")
@click.argument("plan_path", metavar="PLAN", type=_plan_path)
def explain(plan_path):
    """Print a readable summary of PLAN: kind, digest, solver verdict, headline metrics, the planner's table."""
    click.echo(documents.explain_plan(load_plan(plan_path)))


@click.command("export")
@click.argument("plan_path", metavar="PLAN", type=_plan_path)
@click.option("--format", "fmt", required=True, metavar="F",
              help="Executor format, by plan kind: train megatron|torchtitan|torchtitan-toml|deepspeed; serve "
                   "vllm|sglang; experts sglang|vllm-ascend (vllm is refused: no static expert map); scatter json. "
                   "Each names the executor version it targets in its header.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write the exported configuration to FILE instead of stdout.")
def export(plan_path, fmt, output):
    """Write PLAN for a named executor version (Megatron-LM script, torchtitan recipe or TOML, vLLM/SGLang lines, ...).

    Exit 2 when the executor cannot run a decision of the plan (the message names the decision and the limit).
    """
    _write_text(documents.export_plan(load_plan(plan_path), fmt), output)


def register(groups):
    """Attach validate, diff, explain and export to the root group."""
    for command in (validate, diff, explain, export):
        groups["root"].add_command(command)
