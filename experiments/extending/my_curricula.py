# my_curricula.py
from dataclasses import dataclass, field

from bicameral.curriculum import Curriculum


@dataclass(kw_only=True)
class Plateau(Curriculum):
    """Unlock when the score improved by less than `min_improvement` over the last `patience` steps."""

    patience: int = 100
    min_improvement: float = 0.01  # a fraction: 0.01 = 1%
    seen: list[list[float]] = field(default_factory=list, init=False)  # [step, score] at this level

    def ready(self, step: int, score: float) -> bool:
        self.seen.append([step, score])
        earlier = [s for t, s in self.seen if t <= step - self.patience]
        return bool(earlier) and (earlier[-1] - score) / earlier[-1] < self.min_improvement

    def advance(self, score: float) -> None:
        self.seen.clear()  # each level is judged on its own scores
