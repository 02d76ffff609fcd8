"""Fixed-point currents and unit conversions.

The allocator computes in whole **deciamps** (0.1 A, ``int``): every capacity is
rounded *down* to a deciamp, every load the allocator does not control is rounded
*up*, and setpoints are sums and differences of those integers. Integer arithmetic
is exact, so rounding can never create current that a zone does not have, and
0.1 A is the resolution stations accept in their charging profiles.

A value within ``1e-7`` A of a 0.1 A step is taken as that step: inputs such as
``19.3`` or ``70 * 0.7`` are not exactly representable in binary floating point,
and without this tolerance they would lose (or gain) a whole deciamp.
"""

from __future__ import annotations

import math

DECIAMPS_PER_AMP = 10
TOLERANCE_DA = 1e-6


def deciamps_down(current_a: float) -> int:
    """Round a current (A) down to whole deciamps: used for capacities and limits."""
    return math.floor(current_a * DECIAMPS_PER_AMP + TOLERANCE_DA)


def deciamps_up(current_a: float) -> int:
    """Round a current (A) up to whole deciamps: used for loads the allocator must cover."""
    return math.ceil(current_a * DECIAMPS_PER_AMP - TOLERANCE_DA)


def amps(current_da: int) -> float:
    """Convert whole deciamps back to amps (``27.3`` for ``273``)."""
    return current_da / DECIAMPS_PER_AMP


def current_to_power_w(current_a: float, phase_count: int, voltage_v: float) -> float:
    """Active power (W) of ``current_a`` per phase on ``phase_count`` phases, cos φ = 1."""
    return current_a * voltage_v * phase_count


def power_to_current_a(power_w: float, phase_count: int, voltage_v: float) -> float:
    """Current per phase (A) that carries ``power_w`` on ``phase_count`` phases, cos φ = 1."""
    return power_w / (voltage_v * phase_count)
