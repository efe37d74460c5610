"""The --set PARAM=VALUE option shared by the benchmark scripts (imported from their folder)."""

import ast


def parse_settings(items: list[str]) -> dict:
    """``["ema=None", "loss=bce"]`` -> ``{"ema": None, "loss": "bce"}``: values are Python
    literals; a bare word stays a string."""
    settings = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return settings
