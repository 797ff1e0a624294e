"""dandelion.functional (grows as the library's issues land)."""

from dandelion.functional.attention import masked_softmax, scaled_dot_product_attention
from dandelion.functional.conv import conv2d, conv2d_transpose
from dandelion.functional.conv1d import conv1d
from dandelion.functional.crf import crf_log_partition, crf_nll, crf_path_score, crf_viterbi
from dandelion.functional.crop import align_crop
from dandelion.functional.global_pooling import global_avg_pool, global_max_pool, global_pool
from dandelion.functional.layernorm import layer_norm, rms_norm
from dandelion.functional.normalization import group_norm, moments, normalize
from dandelion.functional.pooling import adaptive_pool_2d, pool_1d, pool_2d, pool_3d
from dandelion.functional.positional import sinusoidal_position_encoding
from dandelion.functional.shuffle import channel_shuffle
from dandelion.functional.spp import spatial_pyramid_pooling
from dandelion.functional.upsampling import upsample_2d, upsample_2d_bilinear

__all__: list[str] = []
__all__ += ["crf_log_partition", "crf_nll", "crf_path_score", "crf_viterbi", "group_norm", "moments", "normalize"]
__all__ += [
    "conv2d",
    "conv2d_transpose",
    "align_crop",
    "adaptive_pool_2d",
    "pool_1d",
    "pool_2d",
    "pool_3d",
    "channel_shuffle",
    "spatial_pyramid_pooling",
    "upsample_2d",
    "upsample_2d_bilinear",
]
__all__ += ["conv1d", "global_avg_pool", "global_max_pool", "global_pool", "layer_norm", "rms_norm"]
__all__ += ["masked_softmax", "scaled_dot_product_attention", "sinusoidal_position_encoding"]
