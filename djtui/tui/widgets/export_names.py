"""A table name that fits the width it is given: broken after a ``.`` or middle-truncated, never mid-word."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from djtui.domain.djnames import fit_name


class FittedName:
    """A Rich renderable: ``name`` in as many lines as the width needs (see ``fit_name``)."""

    def __init__(self, name: str, style: str = "") -> None:
        self.name = name
        self.style = style

    def __str__(self) -> str:
        return self.name

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in fit_name(self.name, options.max_width):
            yield Text(line, style=self.style, no_wrap=True, overflow="crop")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(12, len(self.name)), len(self.name))
