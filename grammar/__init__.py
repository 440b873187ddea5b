"""Cloudinary's delivery-URL language: text in, frozen dataclasses out. Pure Python, no image code."""

from grammar.ast import Component, DeliveryPath, Param
from grammar.parse import parse_condition, parse_expression, parse_transformation
from grammar.path import is_component, layer_public_id, parse_path, plain_transformation
from grammar.signature import sign, verify_delivery

__all__ = [
    "Component",
    "DeliveryPath",
    "Param",
    "is_component",
    "layer_public_id",
    "parse_condition",
    "parse_expression",
    "parse_path",
    "parse_transformation",
    "plain_transformation",
    "sign",
    "verify_delivery",
]
