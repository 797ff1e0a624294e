"""``Center``: class centres estimated by a moving average of batch features."""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.tensor.type import integer_dtypes

from dandelion import initialization as init
from dandelion.module.base import Module
from dandelion.module.checks import check_axis_length, check_ndim
from dandelion.self_update import set_update


class Center(Module):
    """Class centres for the center loss (Wen et al., 2016), kept as a self-updating variable.

    Parameters
    ----------
    feature_dim : int
    center_num : int
        Number of classes.
    center : initializer, array or shared variable
        Initial centres, (center_num, feature_dim).

    Update rule recorded by ``forward`` (applied when the compiled training function
    runs with ``collect_self_updates()``): for every class ``c`` present in the batch,
    ``C_batch[c]`` is the mean of the features labelled ``c`` (so several samples of one
    class all contribute, each with weight 1/count) and
    ``C_new[c] = alpha * C_batch[c] + (1 - alpha) * C_old[c]``; classes absent from the
    batch keep their centre. The Theano-era code added ``alpha * (f - C_old)`` once per
    sample, which overshoots (and diverges for ``alpha * count > 2``) when a class
    repeats in a batch; this follows the formula of the module reference instead.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> center = Center(feature_dim=2, center_num=3)
    >>> centers = center.forward(pt.fmatrix("f"), pt.ivector("y"))
    >>> list(center.collect_self_updates()) == [center.center]
    True
    """

    def __init__(self, feature_dim, center_num, center=init.GlorotUniform(), name=None):
        super().__init__(name=name)
        self.feature_dim = int(feature_dim)
        self.center_num = int(center_num)
        self.center = self.register_self_updating_variable(center, shape=(self.center_num, self.feature_dim))

    def forward(self, features, labels, alpha=0.1):
        """Centres before this batch's update; records the update.

        Parameters
        ----------
        features : (B, feature_dim)
        labels : (B,) int, class indices in [0, center_num)
        alpha : float or symbolic scalar, weight of the batch centres

        Returns
        -------
        (center_num, feature_dim) the stored centres
        """
        features = check_ndim("Center.forward", "features", features, 2)
        check_axis_length("Center.forward", "features", features, 1, self.feature_dim, "feature_dim")
        labels = check_ndim("Center.forward", "labels", labels, 1)
        if labels.dtype not in integer_dtypes:
            raise TypeError(f"Center.forward: labels must be an integer tensor (B,), got dtype {labels.dtype}")
        dtype = self.center.dtype
        sums = pt.zeros((self.center_num, self.feature_dim), dtype=dtype)[labels].inc(features.astype(dtype))
        counts = pt.zeros((self.center_num,), dtype=dtype)[labels].inc(pt.ones_like(labels, dtype=dtype))
        batch_centers = sums / pt.maximum(counts, 1)[:, None]
        alpha = pt.as_tensor_variable(alpha).astype(dtype)
        moved = alpha * batch_centers + (1 - alpha) * self.center
        set_update(self.center, pt.switch(pt.gt(counts, 0)[:, None], moved, self.center))
        return self.center

    def predict(self):
        """(center_num, feature_dim) the stored centres."""
        return self.center
