"""When a number is too thin to read: model metrics from too few labels of a class, uplift without its error.

One rule, written once as SQL so every place that shows model metrics (``journey report``,
``journey models``, the live dashboard) says the same: ROC AUC (and the other metrics) from fewer
than :data:`MIN_CLASS_LABELS` positive or negative labels come with a warning naming the counts.
"""

from __future__ import annotations

#: Fewer positive (or negative) labels than this and a ROC AUC is mostly noise: with 4 positives
#: one reordered customer moves it by 1/4 of its range.
MIN_CLASS_LABELS = 30

#: A ``warning`` column over a ``model_metrics`` row (``labels``, ``positives``): empty when enough of both.
WARNING_SQL = (
    f"multiIf(positives < {MIN_CLASS_LABELS}, concat('only ', toString(positives), ' positive of ', "
    f"toString(labels), ' labels: too few to trust these metrics (needs {MIN_CLASS_LABELS})'), "
    f"labels - positives < {MIN_CLASS_LABELS}, concat('only ', toString(labels - positives), ' negative of ', "
    f"toString(labels), ' labels: too few to trust these metrics (needs {MIN_CLASS_LABELS})'), '') AS warning")

#: Only the ROC AUC points computed from enough labels of both classes (a chart over time).
TRUSTED_SQL = f"positives >= {MIN_CLASS_LABELS} AND labels - positives >= {MIN_CLASS_LABELS}"

#: The uplift interval shown with every uplift: 1.96 standard errors either side (95%, normal approximation).
Z95 = 1.96
