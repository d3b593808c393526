"""Networks: ResNet-50 trunk, a light CNN, HMR's iterative regressor, Motion HMR."""

from trainer.model.motion_hmr import BACKBONES, HEADS, MotionHMR, clip_predictions
from trainer.model.regressor import mean_params
from trainer.model.resnet import ResNet50, load_imagenet_weights
from trainer.model.small_cnn import SmallCNN

__all__ = ["BACKBONES", "HEADS", "MotionHMR", "ResNet50", "SmallCNN", "clip_predictions",
           "load_imagenet_weights", "mean_params"]
