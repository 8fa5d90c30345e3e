"""The verdict: scores on every fold x seed, paired comparisons, the decision and its words.

Pure numpy/scipy/baycomp: no TensorFlow, no MLflow. `statistics` scores and compares,
`decision` applies the rule (docs/verdict.md), `wording` says it.
"""
from cellpick.verdict.decision import VERDICT_SCHEMA_VERSION, CellResult, Verdict, decide
from cellpick.verdict.statistics import (
    BOUNDS,
    KINDS,
    LEVEL,
    Design,
    compare,
    default_rope,
    interval,
    mase,
    posterior,
    score,
    summarize,
)
from cellpick.verdict.wording import headline

__all__ = ["BOUNDS", "KINDS", "LEVEL", "VERDICT_SCHEMA_VERSION", "CellResult", "Design",
           "Verdict", "compare", "decide", "default_rope", "headline", "interval", "mase",
           "posterior", "score", "summarize"]
