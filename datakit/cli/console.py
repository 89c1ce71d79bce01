"""The rich consoles every command prints through."""

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
