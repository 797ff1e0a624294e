"""Constructor-argument checks shared by the zoo models (messages name class, argument, values)."""

from __future__ import annotations

BATCHNORM_MODES = (0, 1, 2)


def check_batchnorm_mode(where, value):
    if value not in BATCHNORM_MODES:
        raise ValueError(
            f"{where}: batchnorm_mode must be one of {BATCHNORM_MODES} "
            f"(0 none, 1 after every convolution, 2 only after the last), got {value!r}"
        )
    return value


def check_positive_int(where, argument, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {argument} must be a positive int, got {value!r}")
    return value


def check_divisible(where, argument, value, divisor, divisor_name):
    if value % divisor != 0:
        raise ValueError(f"{where}: {argument} ({value}) must be divisible by {divisor_name} ({divisor})")
    return value


def check_int_list(where, argument, value, length):
    values = list(value)
    if len(values) != length:
        raise ValueError(f"{where}: {argument} must have {length} entries, got {len(values)}: {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{where}: {argument} must hold non-negative ints, got {value!r}")
    return values
