"""C text of ``dandelion.ops.exp32``: ``static inline float dl_exp32(float)``, from its constants."""

from __future__ import annotations

from dandelion.ops import exp32


def _f(value):
    return f"{float(value)!r}f"


def support_code():
    """The C function ``dl_exp32`` (needs <math.h> for INFINITY and <stdint.h>)."""
    steps = "\n".join(f"    p = p * r + {_f(c)};" for c in exp32.POLYNOMIAL[1:])
    return f"""
static inline float dl_exp32(float x)
{{
    const int over = x > {_f(exp32.HIGHEST)}, under = x < {_f(exp32.LOWEST)};
    x = (over || under) ? 0.0f : x;
    const float n = (x * {_f(exp32.LOG2E)} + {_f(exp32.ROUNDING)}) - {_f(exp32.ROUNDING)};
    float r = x - n * {_f(exp32.LN2_HIGH)};
    r = r - n * {_f(exp32.LN2_LOW)};
    float p = {_f(exp32.POLYNOMIAL[0])};
{steps}
    p = p * r * r + r + 1.0f;
    union {{ int32_t i; float f; }} two_n;
    two_n.i = ((int32_t)n + {exp32.EXPONENT_BIAS}) << {exp32.MANTISSA_BITS};
    const float y = p * two_n.f;
    return over ? INFINITY : (under ? 0.0f : y);
}}
"""
