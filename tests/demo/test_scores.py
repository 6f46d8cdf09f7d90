"""Cutting an excerpt to a length (the demo's short Bach10 training pieces), against hand-made notes."""

from __future__ import annotations

from transfersep.demo.scores import Excerpt, clip


def test_clip_drops_later_notes_and_shortens_the_ones_sounding_at_the_cut():
    parts = [[(0.0, 1.0, 60), (1.0, 2.0, 62), (3.0, 1.0, 64)], [(0.5, 3.5, 48)]]
    bars = [(0.0, 2.0, 4, 4), (2.0, 2.0, 4, 4)]
    ex = Excerpt("bach/x", 0, 2, 120.0, parts, bars, 4.0)
    cut = clip(ex, 2.5)
    assert cut.duration == 2.5 and cut.n_bars == 2
    assert cut.parts == [[(0.0, 1.0, 60), (1.0, 1.5, 62)], [(0.5, 2.0, 48)]]
    assert cut.bars == [(0.0, 2.0, 4, 4), (2.0, 0.5, 4, 4)]
    assert clip(ex, 5.0) is ex  # shorter than the cut: unchanged
