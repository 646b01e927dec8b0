"""Typer command-line interface (thin: parse, call one service, present)."""
