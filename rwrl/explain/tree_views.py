"""A fitted tree surrogate read by observation name: its text, its picture, its importances.

Observation names come from the env's flat layout (``observation_slices``,
``rwrl.core.layout``): an entry of one number keeps its name ("height"), an
entry of several is numbered ("position[0]", "position[1]", ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rwrl.explain.surrogates import TreePolicy


def observation_names(slices: dict[str, slice]) -> list[str]:
    """Return one name per flat observation entry, in layout order."""
    names: list[str] = []
    for name, where in sorted(slices.items(), key=lambda item: item[1].start):
        size = where.stop - where.start
        names += [name] if size == 1 else [f"{name}[{i}]" for i in range(size)]
    return names


def _check_names(policy: TreePolicy, names: list[str]) -> None:
    if len(names) != policy.tree.n_features_in_:
        raise ValueError(f"{len(names)} observation names for a tree of {policy.tree.n_features_in_} inputs")


def importances(policy: TreePolicy, names: list[str]) -> dict[str, float]:
    """Return name -> impurity-based importance (the weighted squared-error reduction of
    the splits on that entry, as a fraction of the tree's total; sums to 1 unless the tree
    has no split), largest first, entries never split on left out."""
    _check_names(policy, names)
    values = np.asarray(policy.tree.feature_importances_, np.float64)
    order = np.argsort(-values, kind="stable")
    return {names[i]: float(values[i]) for i in order if values[i] > 0}


def tree_text(policy: TreePolicy, names: list[str]) -> str:
    """Return the tree as indented if/else text (sklearn ``export_text``), 4 decimals."""
    from sklearn.tree import export_text

    _check_names(policy, names)
    return export_text(policy.tree, feature_names=list(names), decimals=4)


def save_tree_png(policy: TreePolicy, names: list[str], path: Path, title: str = "") -> Path:
    """Draw the tree (sklearn ``plot_tree``) and save it as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; also what a test runs under
    import matplotlib.pyplot as plt
    from sklearn.tree import plot_tree

    _check_names(policy, names)
    leaves = policy.tree.get_n_leaves()
    fig, ax = plt.subplots(figsize=(max(6.0, 2.4 * leaves), 1.8 * (policy.depth + 1) + 1))
    try:
        plot_tree(policy.tree, feature_names=list(names), filled=True, impurity=False,
                  precision=3, ax=ax)
        if title:
            ax.set_title(title)
        fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


__all__ = ["importances", "observation_names", "save_tree_png", "tree_text"]
