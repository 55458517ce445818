"""What figures call things: axis names from the problems' coordinates, tick labels of log axes,
and a title that states the values a run changed.

The names are a table here rather than code in the problems, so a figure is drawn from a
render directory alone (no problem is built, no user code imported). A coordinate not in the
table keeps its recipe name (custom losses: `w[1]`, `m[0,1]`).
"""

from __future__ import annotations

import math

# Coordinate → (symbol, description). The description is shown on axes, the symbol in titles.
SYMBOLS = {
    "eta": ("η", "step size"),
    "lr": ("η", "step size, both layers"),
    "lr0": ("η₀", "step size, layer 0"),
    "lr1": ("η₁", "step size, layer 1"),
    "lam": ("λ", "ridge"),
    "alpha": ("α", "initialization scale"),
    "u0": ("u₀", "initial u"),
    "v0": ("v₀", "initial v"),
    "a": ("a", "direction 1"),
    "b": ("b", "direction 2"),
    "y": ("y", "target"),
    "offset": ("offset", "initialization offset"),
}
# Recipe keys of other tables that titles may name.
KEY_SYMBOLS = {"gd.eta": "η", "gd.steps": "T", "gd.dtype": "dtype"}
# Tables whose keys change the mathematics (so a title names them); [render], [engine],
# [analysis] and the plane's view do not (the axes show the view).
TITLE_TABLES = ("problem.", "gd.", "plane.base", "plane.dir1", "plane.dir2", "plane.seed")


def axis_label(param: str, scale: str = "linear") -> str:
    """'η (step size)' for eta; a log10 axis adds ', log scale' (its ticks are powers of ten)."""
    symbol, description = SYMBOLS.get(param, (param, ""))
    extra = ", ".join(p for p in (description, "log scale" if scale == "log10" else "") if p)
    return f"{symbol} ({extra})" if extra else symbol


def key_label(key: str, log: bool = False) -> str:
    """The axis name of a dotted recipe key a sweep varies: problem.lam → 'λ (ridge)', gd.eta → 'η (step size)'."""
    last = key.rsplit(".", 1)[-1]
    if key.startswith(("problem.", "gd.")) and last in SYMBOLS:
        return axis_label(last, "log10" if log else "linear")
    return f"{key} (log scale)" if log else key


def symbol(key: str) -> str:
    """The short name of a dotted recipe key in a title: problem.lam → λ, gd.eta → η."""
    if key in KEY_SYMBOLS:
        return KEY_SYMBOLS[key]
    last = key.rsplit(".", 1)[-1]
    return SYMBOLS[last][0] if key.startswith("problem.") and last in SYMBOLS else last


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def title_of(name: str, overrides: dict | None) -> str:
    """'p1-fig3 (η = 0.8, λ = 0)': the recipe's name and the values changed from its file."""
    shown = [
        f"{symbol(k)} = {format_value(v)}"
        for k, v in (overrides or {}).items()
        if k.startswith(TITLE_TABLES) and not k.startswith("problem.kind")
    ]
    return f"{name} ({', '.join(shown)})" if shown else name


def superscript(k: int) -> str:
    """10^k with a superscript exponent, as mathtext: '$10^{-2}$'."""
    return f"$10^{{{k}}}$"


def plain_number(v: float) -> str:
    """A tick value: '0.05', '200', or '$2\\times10^{-5}$' outside [10⁻³, 10⁴)."""
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4g}"
    k = math.floor(math.log10(abs(v)))
    m = v / 10.0**k
    return superscript(k) if abs(m - 1) < 1e-9 else f"${m:.3g}\\times10^{{{k}}}$"


def log_ticks(lo: float, hi: float, max_ticks: int = 7) -> tuple[list[float], list[str]]:
    """Tick positions (decades) and labels for a log10 axis spanning [lo, hi] decades.

    Two decades or more: whole decades, labelled 10ᵏ (every m-th one, so at most `max_ticks`).
    Down to 0.6 decades: the values m·10ᵏ with m in (1, 2, 5) (or 1, 2, 3, 5, 7 below one decade).
    Narrower: round physical values inside the span. Positions are log10 of the values.
    """
    if hi - lo >= 2:
        first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
        every = max(1, math.ceil((last - first + 1) / max_ticks))
        ks = list(range(first, last + 1, every))
        return [float(k) for k in ks], [superscript(k) for k in ks]
    vmin, vmax = 10.0**lo, 10.0**hi
    if hi - lo >= 0.6:
        mantissas = (1, 2, 5) if hi - lo >= 1 else (1, 2, 3, 5, 7)
        values = [m * 10.0**k for k in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in mantissas]
    else:
        import matplotlib.ticker

        values = list(matplotlib.ticker.MaxNLocator(nbins=5).tick_values(vmin, vmax))
    values = [v for v in values if v > 0 and vmin * (1 - 1e-9) <= v <= vmax * (1 + 1e-9)]
    if len(values) < 2:  # a very narrow span: its end points
        values = [vmin, vmax]
    return [math.log10(v) for v in values], [plain_number(v) for v in values]
