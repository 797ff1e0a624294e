"""dandelion.model: the model zoo, written against dandelion's public API only.

Sub-module names, classes and registration order follow the Theano-era zoo, so weights it
saved load with ``set_weights`` (by order) and ``set_weights_by_name``.
"""

from dandelion.model.alternate_2d_lstm import Alternate_2D_LSTM
from dandelion.model.ctpn import model_CTPN
from dandelion.model.dsconv import DSConv2D
from dandelion.model.fpn import model_FPN
from dandelion.model.resnet import ResNet_bottleneck
from dandelion.model.shufflenet import ShuffleUnit, ShuffleUnit_Stack, model_ShuffleNet
from dandelion.model.shufflenet_v2 import ShuffleUnit_v2, ShuffleUnit_v2_Stack, model_ShuffleNet_v2
from dandelion.model.shuffleseg import ShuffleNet, model_ShuffleSeg
from dandelion.model.unet import model_Unet
from dandelion.model.vgg import model_VGG16

__all__ = [
    "model_VGG16",
    "ResNet_bottleneck",
    "model_FPN",
    "DSConv2D",
    "ShuffleUnit",
    "ShuffleUnit_Stack",
    "model_ShuffleNet",
    "ShuffleUnit_v2",
    "ShuffleUnit_v2_Stack",
    "model_ShuffleNet_v2",
    "ShuffleNet",
    "model_ShuffleSeg",
    "model_Unet",
    "model_CTPN",
    "Alternate_2D_LSTM",
]
