"""``ChainCRF``: linear-chain CRF loss and Viterbi decoding for sequence labelling."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.type import integer_dtypes

from dandelion import initialization as init
from dandelion.functional.crf import crf_nll, crf_viterbi, padded_transition_scores, split_padded
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim


class ChainCRF(Module):
    """Linear-chain conditional random field over ``state_num`` labels.

    The score of a label path ``y_1..y_T`` for emissions ``x`` (B, T, N) is
    ``sum_t p_scale * x[t, y_t] + sum_t A[y_t, y_{t+1}]``, plus, with ``state_pad``,
    ``A[<sos>, y_1] + A[y_T, <eos>]``. ``A`` is derived from the ``transitions``
    parameter as the Theano-era module did: entries clipped to [1e-4, 1], transitions
    into ``<sos>`` and out of ``<eos>`` set to 0, and rows divided by their sums when
    ``transition_matrix_normalization`` (see ``dandelion.functional.crf``). ``A`` is
    used as additive (log-space) scores.

    Corrections of the Theano-era module (its defects): the partition function is the
    log-sum-exp over every path (the old code summed the final forward scores), it
    starts from ``<sos>`` and ends with the transition to ``<eos>`` just as the true
    path's score does, paths never pass through the padding states, Viterbi decoding
    includes the ``<eos>`` transition and never returns a padding label, and building a
    graph never changes the module (the old one overwrote ``self.transitions``).

    Parameters
    ----------
    state_num : int
        N, the number of labels (the input's last axis).
    transitions : initializer, array or shared variable
        (N + 2, N + 2) with ``state_pad`` (``<sos>`` is index N, ``<eos>`` N + 1),
        else (N, N).
    p_scale : float
        Factor applied to the input scores.
    l1_regularization : float
        Weight of ``sum(|A|)`` added to the summed loss; 0 disables it.
    state_pad : bool
        Add the ``<sos>``/``<eos>`` states inside the module. Set False when the input
        already carries its own start and end states.
    transition_matrix_normalization : bool
        Divide each row of the clipped transition matrix by its sum.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> crf = ChainCRF(state_num=4)
    >>> x, y = pt.tensor3("x"), pt.imatrix("y")
    >>> crf.forward(x, y).ndim, crf.predict(x).ndim  # summed loss with the L1 term, (B, T) labels
    (0, 2)
    >>> ChainCRF(state_num=4, l1_regularization=0).forward(x, y).ndim  # per-sequence loss
    1
    """

    def __init__(
        self,
        state_num,
        transitions=init.GlorotUniform(),
        p_scale=1.0,
        l1_regularization=0.001,
        state_pad=True,
        transition_matrix_normalization=True,
        name=None,
    ):
        super().__init__(name=name)
        if int(state_num) <= 0:
            raise ValueError(f"ChainCRF: state_num must be a positive int, got {state_num!r}")
        self.state_num = int(state_num)
        self.p_scale = p_scale
        self.l1_regularization = l1_regularization
        self.state_pad = bool(state_pad)
        self.transition_matrix_normalization = bool(transition_matrix_normalization)
        size = self.state_num + 2 if self.state_pad else self.state_num
        self.transitions = self.register_param(transitions, shape=(size, size))

    def transition_scores(self):
        """The score matrix ``A`` built from ``transitions``, (M, M); a new graph each call."""
        return padded_transition_scores(self.transitions, self.state_pad, self.transition_matrix_normalization)

    def _check_x(self, where, x):
        x = check_ndim(where, "x", x, 3)
        check_axis_length(where, "x", x, 2, self.state_num, "state_num")
        return x * pt.constant(self.p_scale, dtype=x.dtype)

    def forward(self, x, y):
        """Negative log-likelihood of the labels.

        Parameters
        ----------
        x : (B, T, N) float scores, e.g. from an RNN
        y : (B, T) int labels in [0, N)

        Returns
        -------
        (B,) per-sequence loss when ``l1_regularization`` is 0, else a 0-d scalar (like
        every other loss, so it can be differentiated directly): the loss summed over the
        batch plus ``l1_regularization * sum(|A|)``.
        """
        x = self._check_x("ChainCRF.forward", x)
        y = check_ndim("ChainCRF.forward", "y", y, 2)
        if y.dtype not in integer_dtypes:
            raise TypeError(f"ChainCRF.forward: y must be an integer tensor (B, T), got dtype {y.dtype}")
        for axis, meaning in ((0, "batch"), (1, "time")):
            check_axis_length("ChainCRF.forward", "y", y, axis, x.type.shape[axis], f"{meaning}, as x")
        scores = self.transition_scores()
        transitions, start, end = split_padded(scores, self.state_pad)
        loss = crf_nll(x, y, transitions, start, end)
        if self.l1_regularization > 0:
            loss = pt.sum(loss) + pt.constant(self.l1_regularization, dtype=scores.dtype) * pt.sum(abs(scores))
        return loss

    def predict(self, x):
        """Viterbi decoding: x (B, T, N) -> (B, T) int32 labels in [0, N)."""
        x = self._check_x("ChainCRF.predict", x)
        transitions, start, end = split_padded(self.transition_scores(), self.state_pad)
        return crf_viterbi(x, transitions, start, end)
