"""Models: the timm ViT encoder, MAE pretraining, and the FaceAge and FaceSurvival heads."""

from fahr.models.heads import FaceAgeModel, FaceSurvivalModel, load_encoder, load_weights, save_checkpoint
from fahr.models.mae import MaskedAutoencoder
from fahr.models.vit import ViTSpec, build_encoder, encoder_flops, sincos_pos_embed_2d

__all__ = [
    "FaceAgeModel",
    "FaceSurvivalModel",
    "MaskedAutoencoder",
    "ViTSpec",
    "build_encoder",
    "encoder_flops",
    "load_weights",
    "load_encoder",
    "save_checkpoint",
    "sincos_pos_embed_2d",
]
