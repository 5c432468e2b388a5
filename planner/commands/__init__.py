"""Click commands, one module per planner plus documents (validate/diff/explain/export) and profiles.

Each module exposes `register(groups)` where groups maps "root", "plan", "estimate", "trace" to click groups.
Commands parse options, build a request, call the public API, and print through `common.emit`.
"""
