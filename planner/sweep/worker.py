"""Run one scenario: the planner's click command with `-o -`, its plan captured from stdout.

Returns plain data (picklable for process pools and Ray). An expected parplan error is recorded with its exit
code (3 = infeasible); an unexpected exception is recorded with its type, message and innermost frame, so one
bad scenario never stops a sweep.
"""

import io
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout

import click

from costmodels.errors import ParplanError
from planner.sweep.commands import planner_command

STDERR_TAIL = 2000
"""characters of a failing scenario's stderr kept with its error"""


def run_scenario(task: dict) -> dict:
    """Run task = {"digest", "planner", "args", "index"}; return the result record."""
    command = planner_command(task["planner"])
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    status, code, error = "ok", 0, ""
    try:
        with redirect_stdout(out), redirect_stderr(err):
            returned = command.main(args=[*task["args"], "-o", "-"], prog_name=f"parplan {task['planner']}",
                                    standalone_mode=False)
        if isinstance(returned, int) and returned != 0:
            status, code, error = "error", returned, err.getvalue()[-STDERR_TAIL:].strip()
    except ParplanError as exc:
        status, code, error = ("infeasible" if exc.exit_code == 3 else "error"), exc.exit_code, str(exc)
    except click.ClickException as exc:
        status, code, error = "error", exc.exit_code, exc.format_message()
    except Exception as exc:  # a bug in a planner: keep what is needed to find it, carry on with the sweep
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        status, code = "error", 1
        error = f"{type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})"
    wall_s = time.perf_counter() - start
    plan = out.getvalue() if status == "ok" else None
    return {"digest": task["digest"], "index": task["index"], "status": status, "exit_code": code, "error": error,
            "plan": plan, "wall_s": wall_s}
