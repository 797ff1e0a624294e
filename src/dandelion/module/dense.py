"""``Dense``: an affine map on the last axis."""

from __future__ import annotations

from dandelion import initialization as init
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, total_dim
from dandelion.module.uneven import input_weight_spec


class Dense(Module):
    """Fully connected layer ``input @ W + b`` on the last axis of input of any ndim.

    Parameters
    ----------
    input_dims : int or list of int
        Input dimension, or the sizes of concatenated inputs ("uneven" init of W).
    output_dim : int
    W, b : initializer, ndarray or shared variable; ``b=None`` disables the bias.

    Shapes: input (..., sum(input_dims)) -> output (..., output_dim).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from dandelion.module import Dense
    >>> dense = Dense(input_dims=4, output_dim=3)
    >>> dense.forward(pt.fmatrix("x")).type.shape
    (None, 3)
    """

    def __init__(self, input_dims, output_dim, W=init.GlorotUniform(), b=init.Constant(0.0), name=None):
        super().__init__(name=name)
        self.input_dim, parts = total_dim("Dense", "input_dims", input_dims)
        self.output_dim = int(output_dim)
        self.W = self.register_param(input_weight_spec(W, parts, self.output_dim), shape=(self.input_dim, self.output_dim))
        self.b = None if b is None else self.register_param(b, shape=(self.output_dim,))

    def forward(self, input):
        if input.ndim < 1:
            raise ValueError(f"Dense: input must have ndim >= 1, got ndim {input.ndim}")
        check_axis_length("Dense", "input", input, -1, self.input_dim, "input_dims")
        if input.ndim > 2:
            # One product over all leading axes: ``input @ W`` on (B, T, D) is a batched
            # matmul whose weight gradient PyTensor computes as B small products and a sum.
            leading = [size if size is not None else input.shape[axis] for axis, size in enumerate(input.type.shape[:-1])]
            flat = input.reshape((-1, self.input_dim)) @ self.W
            output = flat.reshape((*leading, self.output_dim))
        else:
            output = input @ self.W
        return output if self.b is None else output + self.b
