"""Pieces several families share, each one a swap point: attention, norms/activations by name, spatial attention."""
from .attention import attention, attention_backend, available_backends, register_backend, set_attention_backend
from .layers import activation, norm, register_activation, register_norm

__all__ = ["attention", "attention_backend", "available_backends", "register_backend", "set_attention_backend",
           "activation", "norm", "register_activation", "register_norm"]
