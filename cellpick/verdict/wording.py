"""The verdict in words: the reason's sentences (every claim with its effect size, ROPE and
probability), percentages and gaps, probabilities that never round across a threshold, and
scores at three significant digits. verdict.decide says what; this module says it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cellpick.verdict.statistics import LEVEL
from cellpick.vocab import display_name, format_score


def _probs(comp: dict) -> dict | None:
    """The probabilities a decision reads: the posterior's, or for a degenerate comparison
    the position of its one difference against the ROPE; None without a test."""
    if comp["probability"] is not None:
        return comp["probability"]
    if not comp["degenerate"]:
        return None
    d, rope = comp["mean_diff"], comp["rope"]
    return {"a_better": float(d > rope), "b_better": float(d < -rope),
            "equivalent": float(-rope <= d <= rope)}


@dataclass
class _Say:
    """The reason's sentences: every claim with its effect size, ROPE and probability."""

    metric: str
    label: str
    rope: float
    design: Any  # verdict.Design: the resampling the comparisons used
    level: float

    def amount(self, x: float) -> str:
        if self.metric == "accuracy":
            return f"{abs(x) * 100:.1f} accuracy points"
        return f"{format_score(abs(x))} {self.label}"

    def rope_text(self) -> str:
        if self.metric == "accuracy":
            return f"ROPE ±{self.rope * 100:.1f} points"
        return f"ROPE ±{format_score(self.rope) or 0}"

    def effect(self, name: str, comp: dict) -> str:
        """'GRU 0.100 MAE worse' (comp: the best against `name`)."""
        d = comp["mean_diff"]
        if comp["degenerate"]:
            if d == 0:
                return f"{name} identical on every {self._unit()}"
            return f"{name} {self.amount(d)} {'worse' if d > 0 else 'better'} on every {self._unit()}"
        if not math.isfinite(d) or d == 0:
            return f"{name} as good"
        return f"{name} {self.amount(d)} {'worse' if d > 0 else 'better'}"

    def _unit(self) -> str:
        return {"rolling-origin": "origin", "single-split": "seed"}.get(self.design.kind,
                                                                        "fold and seed")

    def prob(self, comp: dict, key: str, what: str = "") -> str:
        """'P = 0.96' for one event (or a sum of events '+'), or why there is none."""
        p = comp["probability"]
        if p is None:
            return ("no spread, so no probability" if comp["degenerate"]
                    else f"{comp['n']} value{'s' if comp['n'] != 1 else ''}: no test")
        value = sum(p[k] for k in key.split("+"))
        return f"P{what} {_fmt_p(value)}"

    def clause(self, name: str, comp: dict, key: str, what: str = "") -> str:
        return f"{self.effect(name, comp).strip()}, {self.rope_text()}, {self.prob(comp, key, what)}"

    def cells(self, best, winner, ranked, by_cell, status, summary, decision) -> str:
        B = display_name(best.cell)
        mean, (lo, hi) = summary[best.cell]
        score = f"cross-validated {self.label} {format_score(mean)}" if self.design.kind != \
            "single-split" else f"validation {self.label} {format_score(mean)}"
        over = f"over {self.design.describe()}"
        if decision == "only":
            return (f"{B} is the only cell: {score} [{format_score(lo)}, {format_score(hi)}] "
                    f"{over}.")
        others = [c for c in ranked[1:]]
        rest, opened = [], []
        for c in others:
            C, comp, s = display_name(c.cell), by_cell[c.cell], status[c.cell]
            if c is winner:
                continue
            if s == "failed":
                rest.append(f"{C} failed on every {self._unit()}")
            elif s == "worse":
                rest.append(f"{C} is practically worse ({self.clause('', comp, 'a_better')})")
            elif s == "not better":
                rest.append(f"{C} is not practically better and costs more "
                            f"({self.clause('', comp, 'a_better+equivalent', '(not better)')})")
            elif s == "equivalent":
                rest.append(f"{C} is practically equivalent too but not the cheapest "
                            f"({self.clause('', comp, 'equivalent+b_better')})")
            else:
                opened.append(f"{self.clause(C, comp, 'a_better', '(worse)')}, "
                              f"{self.prob(comp, 'equivalent+b_better', '(not worse)')}")
        tail = ("; ".join(rest) + ".") if rest else ""
        if decision == "equivalent" and winner is not best:
            W = display_name(winner.cell)
            head = (f"{W} and {B} are practically equivalent ("
                    f"{self.clause(W, by_cell[winner.cell], 'equivalent+b_better')}) {over}; "
                    f"{W} wins with {_savings(winner, best)}.")
            return f"{head} {tail[0].upper()}{tail[1:]}" if tail else head
        if decision == "better":
            return f"{B} wins with the best {score} {over}: {tail}"
        if decision == "equivalent":
            return f"{B} wins with the best {score} {over} and costs least: {tail}"
        open_ = [display_name(c.cell) for c in others if status[c.cell] == "open"]
        tail = f" {tail[0].upper()}{tail[1:]}" if tail else ""
        return (f"Undecided: {over} the data cannot separate {B} from {_join(open_)} ("
                f"{'; '.join(opened)}).{tail} {B} is the winner as the best mean ({score}). "
                f"More data, or more folds and seeds (--folds, --seeds), would decide it.")

    def baseline(self, name, base_mean, winner, summary, comps, task):
        """(beats_best_baseline, a leading sentence or '', a closing sentence or '')."""
        by_cell = {c["a"]: c for c in comps}
        win = by_cell[winner.cell]
        what = f"{self.label} {format_score(base_mean)}"
        lead_probs = [_probs(c) for c in comps]
        if all(p is not None and p["b_better"] >= self.level for p in lead_probs):
            verb = {"forecast": "forecasts", "classify": "classifies",
                    "regress": "predicts"}.get(task or "", "scores")
            worst = min(c["probability"]["b_better"] if c["probability"] else 1.0 for c in comps)
            best_cell = comps[0]["a"]  # comps follow the cells' ranking
            lead = (f"{name} {verb} better than every recurrent cell here ({what} vs "
                    f"{format_score(summary[best_cell][0])} for {display_name(best_cell)}, "
                    f"{self.rope_text()}, P {_fmt_p(worst)} against the closest): the cells "
                    f"do not pay off on this data.")
            return False, lead, ""
        W = display_name(winner.cell)
        p = _probs(win)
        mean = summary[winner.cell][0]
        gap = _gap(mean, base_mean, self.metric) if mean != base_mean else "nothing"
        if p is not None and p["a_better"] >= self.level:
            return True, "", (f"{W} beats the best baseline ({name}, {what}) by {gap} "
                              f"({self.rope_text()}, {self.prob(win, 'a_better')}).")
        better = (mean > base_mean) if self.metric == "accuracy" else (mean < base_mean)
        if better:
            return False, "", (f"{W} is {gap} better than the best baseline ({name}, {what}), "
                               f"but not practically ({self.rope_text()}, "
                               f"{self.prob(win, 'a_better', '(practically better)')}): "
                               f"consider the baseline.")
        how = (f"scores the same as {W}" if mean == base_mean else
               f"scores {_gap(base_mean, mean, self.metric)} better than {W}")
        return False, "", (f"The best baseline ({name}, {what}) {how} ({self.rope_text()}, "
                           f"{self.prob(win, 'b_better', '(baseline practically better)')}): "
                           f"consider it.")


def _join(names: list[str], word: str = "or") -> str:
    if not names:
        return ""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]


def _fmt_p(p: float) -> str:
    """'= 0.96'; never rounded up across a threshold (floored to 2 decimals); '≥ 0.999'."""
    if p > 0.999:  # no '<' or '>': the sentence also goes into HTML and Markdown unescaped
        return "≥ 0.999"
    if p < 0.001:
        return "≤ 0.001"
    return f"= {math.floor(p * 100) / 100:.2f}"


def _gap(winner: float, loser: float, metric: str) -> str:
    """'A is better than B by X%': X is the gap relative to B, the one being beaten."""
    if metric == "accuracy":
        return f"{abs(winner - loser) * 100:.1f} percentage points"
    if loser == 0:
        return format_score(abs(winner - loser))
    return _pct(abs(winner - loser) / abs(loser))


def _savings(cheap: Any, best: Any) -> str:
    """Two verdict.CellResult: what the cheaper one saves."""
    if cheap.n_params < best.n_params:
        text = f"{_pct(1 - cheap.n_params / best.n_params)} fewer parameters"
    else:
        text = "as many parameters"
    if best.train_seconds > 0 and cheap.train_seconds != best.train_seconds:
        change = cheap.train_seconds / best.train_seconds - 1
        text += (f" and {_pct(-change)} less training time" if change < 0
                 else f" (though {_pct(change)} more training time)")
    return text


def _pct(fraction: float) -> str:
    pct = round(fraction * 100)
    return "<1%" if pct == 0 and fraction > 0 else f"{pct}%"


def headline(v: dict) -> str:
    """The decision of a verdict (`Verdict.to_dict()`) in a few words, as a title:
    'SimpleRNN wins: practically equivalent to GRU and cheaper; LSTM practically worse',
    'Undecided between LSTM and GRU (LSTM has the best mean)'; then the best baseline's
    standing against the winner ('beats the best baseline, ridge', 'ridge as good')."""
    W, B = display_name(v["winner"]), display_name(v.get("best_mean_cell") or v["winner"])
    standing = v.get("standing") or _standing_from_comparisons(v)

    def who(status: str) -> str:
        return _join([display_name(c) for c, s in standing.items() if s == status], "and")

    decision = v.get("decision")
    if decision == "only":
        text = f"{W}: the only cell"
    elif decision == "undecided":
        tied = _join([B] + [display_name(c) for c, s in standing.items() if s == "open"], "and")
        text = f"Undecided between {tied} ({B} has the best mean)"
        if who("worse"):
            text += f"; {who('worse')} practically worse"
    else:
        bits = []
        if v["winner"] != v.get("best_mean_cell"):
            bits.append(f"practically equivalent to {B} and cheaper")
        for status, words in (("worse", "practically worse"), ("equivalent", "equivalent, dearer"),
                              ("not better", "not practically better, dearer"),
                              ("failed", "failed")):
            if who(status):
                bits.append(f"{who(status)} {words}")
        text = f"{W} wins" + (": " + "; ".join(bits) if bits else "")
    return text + _baseline_words(v)


def _standing_from_comparisons(v: dict) -> dict[str, str]:
    """A verdict.json from before `standing`: practically worse or not, from its comparisons."""
    out = {v["winner"]: "winner"}
    for comp in v.get("comparisons") or []:
        p = comp.get("probability")
        worse = (p["a_better"] >= LEVEL if p is not None else  # no spread: the sign decides
                 bool(comp.get("degenerate")) and comp["mean_diff"] > (comp.get("rope") or 0))
        if comp["b"] != v["winner"]:
            out[comp["b"]] = "worse" if worse else "open"
    return out


def _baseline_words(v: dict) -> str:
    name = v.get("best_baseline")
    comp = next((c for c in v.get("baseline_comparisons") or [] if c.get("a") == v["winner"]), None)
    if not name or comp is None:
        return ""
    p = comp.get("probability")
    if v.get("beats_best_baseline"):
        return f"; beats the best baseline, {name}"
    if p is not None and p["b_better"] >= LEVEL:
        return f"; the {name} baseline is practically better"
    mean, base = v["cells"][v["winner"]].get("mean"), (v.get("baselines") or {}).get(name)
    if mean is not None and base is not None and (mean > base) == bool(v.get("greater_is_better")):
        return f"; not practically better than the {name} baseline"
    return f"; the {name} baseline scores as well or better"
