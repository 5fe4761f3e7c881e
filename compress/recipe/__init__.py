"""Recipes: YAML or Python descriptions of a compression pipeline."""

from compress.recipe.loader import load_recipe
from compress.recipe.schema import Recipe

__all__ = ["Recipe", "load_recipe"]
