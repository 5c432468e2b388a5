"""One line describing where a benchmark ran, for the results files."""

import os
import platform


def machine_note() -> str:
    """CPU architecture, core count, Python version and the 1-minute load average when measuring began
    (a load well above the core count means other work shared the machine and wall times are inflated)."""
    load = os.getloadavg()[0]
    return (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"1-min load average {load:.1f} when the run started.")
