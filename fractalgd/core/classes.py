"""Class ids shared by every problem; problem-specific classes start at FIRST_PROBLEM_CLASS."""

from __future__ import annotations

UNDECIDED = 0  # no decision within the step budget (e.g. still converging, slowly, at T)
DIVERGED = 1  # non-finite, or the parameter norm left every bounded region
PERIOD2 = 2  # ‖θ_{t} − θ_{t−2}‖ tiny while ‖θ_t − θ_{t−1}‖ is not: a stable 2-cycle
PERIOD4 = 3  # ‖θ_{t} − θ_{t−4}‖ tiny while ‖θ_t − θ_{t−2}‖ is not: a stable 4-cycle
BOUNDED = 4  # finite at T, no period found, still taking long steps that neither contract nor drift
# Found at T, by running on from θ_T (fractalgd.problems.base.final_period): the smallest k ≤ 32
# with θ_{T+k} and θ_{T+2k} back at θ_T.
PERIOD8 = 5
PERIOD16 = 6
PERIOD32 = 7
PERIODIC = 8  # any other period k ≤ 32 (3, 5, 6, …: the windows inside the chaotic band)
FIRST_PROBLEM_CLASS = 9
COMMON_CLASSES = ("undecided", "diverged", "period2", "period4", "bounded", "period8", "period16", "period32", "periodic")
MAX_FINAL_PERIOD = 32
