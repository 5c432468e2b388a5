"""Whether OR-Tools' native library can load next to highspy's, and what to do when it cannot.

highspy >= 1.13 wheels ship HiGHS as a separate `libhighs.so.1`; the ortools wheel ships its own
`libhighs.so.1` of another HiGHS version (1.12.0 in ortools 9.15). The dynamic loader keeps the first library
of a name it loads, so after `import highspy` (which `import pulp` does) CP-SAT fails to import with an
undefined HiGHS symbol, and after ortools highspy fails likewise. highspy 1.12.0 links HiGHS statically and
lives next to ortools in either order (checked with both import orders), hence the project pins highspy < 1.13.
"""

import contextlib

_ERROR: list[str] = []


def ortools_error() -> str | None:
    """None when OR-Tools' CP-SAT can be used in this process; otherwise why not and what to install."""
    if not _ERROR:
        with contextlib.suppress(ImportError):  # load highspy first if installed: the winner never depends on order
            import highspy  # noqa: F401
        try:
            from ortools.sat.python import cp_model  # noqa: F401  (loads the native library)
            _ERROR.append("")
        except ImportError as exc:
            _ERROR.append(str(exc))
    error = _ERROR[0]
    if not error:
        return None
    if "highs" in error.lower():
        return ("OR-Tools cannot load in a process that already loaded highspy's own libhighs.so.1 (highspy >= 1.13); "
                f"install highspy<1.13, which links HiGHS statically: pip install 'highspy<1.13' ({error})")
    return f"OR-Tools cannot load: pip install ortools ({error})"
