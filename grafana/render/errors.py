"""The one error type of the renderer: what is unsupported or wrong, and where."""

from __future__ import annotations


class RenderError(Exception):
    """A dashboard, variable, panel or query the renderer cannot draw faithfully."""
