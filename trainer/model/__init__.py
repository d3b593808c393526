"""Networks: ResNet-50 trunk, HMR's iterative regressor, Motion HMR."""

from trainer.model.motion_hmr import HEADS, MotionHMR, clip_predictions
from trainer.model.regressor import mean_params
from trainer.model.resnet import ResNet50, load_imagenet_weights

__all__ = ["HEADS", "MotionHMR", "ResNet50", "clip_predictions", "load_imagenet_weights",
           "mean_params"]
