"""Base of the ShuffleNet stages: units applied one after another."""

from __future__ import annotations

from dandelion.module import Module


class UnitStack(Module):
    """Applies the modules of the dict ``self.units`` in order; subclasses fill it, keyed by
    the units' Theano-era names (``shuffleunit0``, ...)."""

    @staticmethod
    def check_stack_size(where, stack_size):
        if isinstance(stack_size, bool) or not isinstance(stack_size, int) or stack_size < 0:
            raise ValueError(f"{where}: stack_size must be a non-negative int, got {stack_size!r}")
        return stack_size

    def forward(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, ceil(H/2), ceil(W/2))."""
        for unit in self.units.values():
            x = unit.forward(x)
        return x

    def predict(self, x):
        """x : (B, in_channels, H, W); returns (B, out_channels, ceil(H/2), ceil(W/2))."""
        for unit in self.units.values():
            x = unit.predict(x)
        return x
