"""Co-view/co-buy recommendations, popularity, bounded memory, and the leak-free hit-rate evaluation."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from processors.messages.config import Recommendations
from processors.messages.cooccurrence import CoOccurrence
from processors.messages.evaluate_recs import evaluate, interactions
from processors.messages.popularity import Board, Popularity
from processors.messages.recommend import Interaction, Recommender
from streams.cli import app
from streams.sources import SourceRecord, open_source

MIN = 60_000


def learn(model: Recommender, history: list[Interaction], *events: tuple[int, str, str | None, str]) -> None:
    for t, item, category, kind in events:
        model.learn(history, Interaction(t * MIN, item, category, kind))


def _taobao(path: Path) -> list[SourceRecord]:
    """The records of a Taobao file, as the CLI reads them."""
    return open_source(f"taobao:{path}")[0]


def test_items_viewed_together_within_the_window_are_related_and_co_bought_weigh_more() -> None:
    model = Recommender(Recommendations(window_minutes=60, view_weight=1.0, buy_weight=3.0))
    a: list[Interaction] = []
    learn(model, a, (0, "i1", "c", "view"), (10, "i2", "c", "view"), (200, "i3", "c", "view"))  # i3: outside
    b: list[Interaction] = []
    learn(model, b, (0, "i1", "c", "buy"), (5, "i4", "c", "buy"))  # co-viewed (1) and co-bought (3)
    assert model.pairs.related("i1") == {"i2": 1.0, "i4": 4.0}
    assert model.pairs.related("i3") == {}
    assert model.recommend([Interaction(0, "i1", "c", "view")], 3, exclude={"i1"}) == ["i4", "i2", "i3"]


def test_recommendations_exclude_and_fall_back_to_top_categories_then_popular() -> None:
    model = Recommender()
    other: list[Interaction] = []
    learn(model, other, (0, "shoe1", "shoes", "buy"), (100, "shoe2", "shoes", "view"),
          (300, "bag1", "bags", "cart"), (400, "hat1", "hats", "buy"), (500, "hat2", "hats", "buy"))
    mine = [Interaction(0, "shoe9", "shoes", "view")]
    assert model.recommend(mine, 3, exclude={"shoe9"}, categories=["shoes"]) == ["shoe1", "shoe2", "hat1"]
    assert model.recommend(mine, 2, exclude={"shoe1"}, categories=["bags"]) == ["bag1", "hat1"]
    assert Recommender.categories_of([Interaction(0, "x", "a", "view"), Interaction(1, "y", "b", "cart")]) == ["b", "a"]


def test_reminders_put_the_customers_own_items_first() -> None:
    model = Recommender()
    seen: list[Interaction] = []
    learn(model, seen, (0, "i1", None, "view"), (1, "i2", None, "view"))
    assert model.recommend(seen, 2, touched_first=True)[:2] == ["i2", "i1"]


def test_cooccurrence_rows_stay_bounded() -> None:
    pairs = CoOccurrence(max_items=50, max_neighbors=5)
    rng = random.Random(3)
    for _ in range(5000):
        pairs.add(f"i{rng.randrange(500)}", f"i{rng.randrange(500)}", 1.0)
    assert len(pairs) <= 50
    assert all(len(row) <= 10 for row in pairs.rows.values())


def test_popularity_boards_hold_the_exact_top_k() -> None:
    rng = random.Random(5)
    counts: Counter[str] = Counter()
    board = Board(5)
    for _ in range(3000):
        item = f"i{int(rng.paretovariate(1.2)) % 200}"
        counts[item] += 1
        board.offer(item, counts[item])
    exact = [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
    assert board.top(5) == exact
    popular = Popularity(top=5)
    popular.add("a", "x", 1.0)
    popular.add("b", "x", 5.0)
    assert popular.top(2) == ["b", "a"] and popular.top_in("x", 1, exclude={"b"}) == ["a"]


SLICE = """user_id,item_id,category_id,behavior_type,timestamp
u1,i1,c1,pv,1000
u1,i2,c1,pv,1060
u1,i2,c1,buy,1120
u2,i1,c1,pv,1180
u2,i2,c1,buy,1240
"""


def test_hit_rates_on_a_hand_checked_slice(tmp_path: Path) -> None:
    path = tmp_path / "slice.csv"
    path.write_text(SLICE)
    result = evaluate(interactions(_taobao(path)))
    # u1 buys i2 having touched i1 and i2 (nothing to discover; re-buying i2 is ranked) ...
    # ... u2 viewed i1 and buys i2, co-viewed with i1 by u1 and the most popular item not yet touched.
    assert result.buyers == 2
    assert {k: result.rate(k) for k in ("cooccurrence/discovery", "popular/discovery", "cooccurrence/rebuy_allowed",
                                         "popular/rebuy_allowed")} == {
        "cooccurrence/discovery": 0.5, "popular/discovery": 0.5, "cooccurrence/rebuy_allowed": 1.0,
        "popular/rebuy_allowed": 1.0}


def test_recommend_eval_command_on_a_slice_of_taobao(datasets: Path, tmp_path: Path) -> None:
    lines = (datasets / "taobao_userbehavior_sample.csv").read_text().splitlines()
    path = tmp_path / "head.csv"
    path.write_text("\n".join(lines[:8001]) + "\n")
    result = CliRunner().invoke(app, ["recommend-eval", "--replay", f"taobao:{path}", "--k", "10"])
    assert result.exit_code == 0, result.output
    expected = evaluate(interactions(_taobao(path)))
    assert f"last purchase of each of {expected.buyers} buyers hidden" in result.output
    assert f"| discovery | co-view/co-buy | {expected.rate('cooccurrence/discovery'):.4f} |" in result.output
    assert f"| discovery | most popular | {expected.rate('popular/discovery'):.4f} |" in result.output
    assert expected.buyers == 48
    assert expected.rate("touched_first/rebuy_allowed") > expected.rate("popular/rebuy_allowed")


def test_recommend_eval_refuses_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["recommend-eval", "--replay", f"taobao:{tmp_path / 'none.csv'}"])
    assert result.exit_code == 2


@pytest.mark.parametrize("k", [1, 10])
def test_evaluation_never_recommends_what_the_model_could_not_know(k: int, tmp_path: Path) -> None:
    path = tmp_path / "leak.csv"
    path.write_text("user_id,item_id,category_id,behavior_type,timestamp\nu1,i1,c1,pv,1000\nu2,i9,c1,buy,1000\n")
    result = evaluate(interactions(_taobao(path)), k=k)
    assert result.buyers == 1 and sum(result.hits.values()) == 0  # i9 appears only at the hidden moment


def test_hit_rates_on_the_whole_taobao_sample(datasets: Path) -> None:
    """The numbers the README reports: 558 buyers, each one's last purchase hidden, k = 10."""
    result = evaluate(interactions(_taobao(datasets / "taobao_userbehavior_sample.csv")))
    assert result.buyers == 558
    assert dict(result.hits) == {
        "cooccurrence/discovery": 4, "popular/discovery": 0,
        "cooccurrence/rebuy_allowed": 247, "touched_first/rebuy_allowed": 274,
        "recently_viewed/rebuy_allowed": 269, "popular/rebuy_allowed": 3}
    # What the message stage sends (recent items first, then co-view/co-buy) beats most-popular 90 to 1.
    assert result.rate("touched_first/rebuy_allowed") > 90 * result.rate("popular/rebuy_allowed")
