"""Writing the report of a results folder: figure, summary table, markdown.

:func:`make_report` reads ``config.json`` and the records of a results
folder written by :func:`skal_cxr.simulation.simulate` and writes

* ``learning_curves.png``: metrics against the percentage of the pool
  labeled, the mean over seeds with a band of one standard deviation, and
  the full-data baseline as a dashed line;
* ``report.md`` opens with the user's question answered
  (:func:`headline`): to reach 98 % of the full-data score, how many labels
  each strategy needed (bootstrap 95 % CI over seeds), and random; a
  comparison across models (the main job) opens with the default against
  random on its view and random without it (:func:`model_headline`);
* ``summary.csv`` and ``report.md``: per strategy, the area under the
  learning curve (AULC), the labels needed to reach a fraction of the
  full-data score, the final metrics, the mean training and acquisition time
  per round, and a paired comparison against random sampling over seeds.

The statistics are small pure functions of the records
(:func:`area_under_learning_curve`, :func:`labels_to_reach`,
:func:`paired_comparison`, :func:`learning_curves`, :func:`summarize`), kept
apart from the files and plots, so that every number of the report can be
recomputed from the records. The paired statistics (:func:`paired_tests`,
:func:`paired_by_seed`, :func:`holm`, :func:`with_holm`) are the ones the
studies under ``benchmarks/`` use too.
Only *complete* runs (every planned round recorded) enter the summary.
"""

from ._format import format_value
from ._headline import headline, labels_to_target, model_headline
from ._paired import bootstrap_ci, holm, paired_by_seed, paired_tests, with_holm
from ._render import make_report, plot_learning_curves
from ._statistics import (
    FINAL_METRICS,
    area_under_learning_curve,
    labels_to_reach,
    learning_curves,
    paired_comparison,
    summarize,
    verdict_vs_random,
)

__all__ = [
    "make_report",
    "summarize",
    "learning_curves",
    "area_under_learning_curve",
    "labels_to_reach",
    "paired_comparison",
    "plot_learning_curves",
    "verdict_vs_random",
    "FINAL_METRICS",
    "headline",
    "model_headline",
    "labels_to_target",
    "paired_tests",
    "paired_by_seed",
    "bootstrap_ci",
    "holm",
    "with_holm",
    "format_value",
]
