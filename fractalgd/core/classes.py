"""Class ids shared by every problem; problem-specific classes start at FIRST_PROBLEM_CLASS."""

from __future__ import annotations

UNDECIDED = 0  # no decision within the step budget (e.g. still converging, slowly, at T)
DIVERGED = 1  # non-finite, or the parameter norm left every bounded region
PERIOD2 = 2  # ‖θ_{t} − θ_{t−2}‖ tiny while ‖θ_t − θ_{t−1}‖ is not: a stable 2-cycle
PERIOD4 = 3  # ‖θ_{t} − θ_{t−4}‖ tiny while ‖θ_t − θ_{t−2}‖ is not: a stable 4-cycle
BOUNDED = 4  # finite at T, no period found, still taking long steps that neither contract nor drift
FIRST_PROBLEM_CLASS = 5
COMMON_CLASSES = ("undecided", "diverged", "period2", "period4", "bounded")
