"""Adaptive Card templates (`*.json.j2`) and the code that fills them."""

from cards.renderer import CardRenderer

__all__ = ["CardRenderer"]
