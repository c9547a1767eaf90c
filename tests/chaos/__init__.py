"""Chaos testing: real `teamroom serve` processes killed with SIGKILL under a mixed workload.

The short run is part of the test suite (tests/test_chaos.py); the long one runs on demand:

    python -m tests.chaos --seconds 300

Both record a history of every call and check it, with the audit log and the final store,
against SPEC §6 (see check.py).
"""

from .check import Report
from .workload import ChaosConfig, run_chaos

__all__ = ["ChaosConfig", "Report", "run_chaos"]
