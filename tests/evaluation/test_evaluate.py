"""evaluate() with a fake separator, checked against the naive numpy SI-SDR."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from eval_helpers import NAMES, ListDataset, make_items
from oracles import naive_sisdr
from transfersep.evaluation.evaluate import evaluate


class FakeSeparator:
    """True sources scaled, plus fixed noise: about 20, 6 and -6 dB SI-SDR for a, b, c."""

    def __init__(self, items):
        self.items = items
        rng = np.random.default_rng(6)
        self.noise = [
            torch.from_numpy(rng.normal(size=it["sources"].shape).astype(np.float32))
            * torch.tensor([[0.01], [0.15], [0.2]])
            for it in items
        ]
        self.calls = []

    def estimate(self, i):
        return self.items[i]["sources"] * torch.tensor([[1.0], [3.0], [1.0]]) + self.noise[i]

    def __call__(self, mix):
        assert not torch.is_grad_enabled()
        self.calls.append(mix.shape[0])
        idx = [
            next(i for i, it in enumerate(self.items) if it["mix"].shape == m.shape and torch.equal(it["mix"], m))
            for m in mix
        ]
        return torch.stack([self.estimate(i) for i in idx])


def test_evaluate_against_numpy(tmp_path):
    items = make_items([800, 800, 800, 600, 600], silent=[(1, 2), (3, 0)])
    sep = FakeSeparator(items)
    gp = {"stage": "finetune", "pretrain": "musdb", "augment": "none", "finetune": "whole", "downstream": "x"}
    res = evaluate(sep, ListDataset(items), NAMES, tmp_path, gp, batch_size=2, extra={"steps": 7})
    assert sep.calls == [2, 1, 2]  # batches never mix excerpt lengths

    want = np.full((5, 3), np.nan)
    for e, it in enumerate(items):
        for c in range(3):
            if it["sources"][c].abs().sum() > 0:
                want[e, c] = naive_sisdr(sep.estimate(e)[c].numpy(), it["sources"][c].numpy())

    with open(tmp_path / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["excerpt", "source", "sisdr_db", "silent_reference", "track", "start_s", "seconds"]
    assert len(rows) == 15
    assert {(r["track"], r["start_s"], r["seconds"]) for r in rows} == {("", "", "")}  # a list cannot say
    for r in rows:
        e, c = int(r["excerpt"]), NAMES.index(r["source"])
        if np.isnan(want[e, c]):
            assert r["sisdr_db"] == "nan" and r["silent_reference"] == "1"
        else:
            assert float(r["sisdr_db"]) == pytest.approx(want[e, c], abs=1e-6) and r["silent_reference"] == "0"

    def no_nan(_):
        raise AssertionError("NaN/Infinity in result.json")

    on_disk = json.loads((tmp_path / "result.json").read_text(), parse_constant=no_nan)
    assert on_disk == json.loads(json.dumps(res))
    per_excerpt = [np.mean([v for v in row if not np.isnan(v)]) for row in want]
    assert on_disk["overall"]["mean"] == pytest.approx(np.mean(per_excerpt), abs=1e-6)
    assert on_disk["overall"]["median"] == pytest.approx(np.median(per_excerpt), abs=1e-6)
    assert on_disk["overall"]["std"] == pytest.approx(np.std(per_excerpt, ddof=1), abs=1e-6)
    assert on_disk["overall"]["n"] == 5 and on_disk["n_excluded"] == 2 and on_disk["n_excerpts"] == 5
    for c, name in enumerate(NAMES):
        col = want[:, c][~np.isnan(want[:, c])]
        ps = on_disk["per_source"][name]
        assert ps["mean"] == pytest.approx(col.mean(), abs=1e-6) and ps["n"] == len(col)
        assert ps["n_excluded"] == 5 - len(col)
    assert on_disk["mean_of_source_means"] == pytest.approx(np.mean([np.nanmean(want[:, c]) for c in range(3)]))
    assert on_disk["grid_point"] == gp and on_disk["sources"] == NAMES and on_disk["extra"] == {"steps": 7}
    assert len(on_disk["test_set_sha1"]) == 40
    # the source with the least noise separates best
    assert on_disk["per_source"]["a"]["mean"] > on_disk["per_source"]["b"]["mean"] > on_disk["per_source"]["c"]["mean"]


def test_evaluate_errors(tmp_path):
    items = make_items([400, 400])
    ds = ListDataset(items)
    with pytest.raises(ValueError, match=r"returned \(2, 2, 400\)"):
        evaluate(lambda m: torch.zeros(m.shape[0], 2, m.shape[1]), ds, NAMES, tmp_path, {})
    with pytest.raises(FloatingPointError, match="diverged"):
        evaluate(lambda m: torch.full((m.shape[0], 3, m.shape[1]), float("nan")), ds, NAMES, tmp_path, {})
    with pytest.raises(ValueError, match="item 0"):
        evaluate(lambda m: m, ListDataset([{"mix": torch.zeros(4)}]), NAMES, tmp_path, {})
    with pytest.raises(ValueError, match=r"sources \[2, N\]"):
        evaluate(lambda m: m, ds, ["a", "b"], tmp_path, {})
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "scores.csv").exists()


def test_scores_say_where_each_excerpt_comes_from(tmp_path):
    """On a real mixed test set (a folder of stems at 16 kHz, coherent and incoherent), the
    track and start written for every source point at exactly the audio the model was given."""
    import soundfile as sf

    from transfersep.data import stems
    from transfersep.data.cache import StemCache
    from transfersep.data.mixing import ExcerptSet
    from transfersep.report.blocks import origins_of
    from transfersep.report.scores import read_scores

    rng = np.random.default_rng(1)
    root = tmp_path / "stems"
    audio = {}
    for k, sec in enumerate((3.0, 4.5, 2.5)):
        song = root / "test" / f"song {k}"
        song.mkdir(parents=True)
        for name in ("lead", "rhythm"):
            x = (rng.normal(size=int(sec * 16000)) * 0.1).astype(np.float32)
            sf.write(song / f"{name}.wav", x, 16000, subtype="FLOAT")
            audio[(f"song {k}", name)] = x
    idx = stems.index(root, ["lead", "rhythm"], {"lead": ["lead"], "rhythm": ["rhythm"]})
    cache = StemCache(tmp_path / "cache", [str(root)])
    gp = {"stage": "baseline", "pretrain": "none", "augment": "none", "finetune": "whole", "downstream": "stems"}
    for mode in ("coherent", "incoherent"):
        ds = ExcerptSet(idx.split("test"), idx.source_names, cache, 1.0, mode, 0, "test", 6)
        out = tmp_path / mode
        res = evaluate(lambda mix: torch.stack([mix * 0.6, mix * 0.4], 1), ds, ["lead", "rhythm"], out, gp)
        assert res["test_data"] == {"generated": False, "files_root": str(root / "test"), "tracks": 3}
        o = origins_of(read_scores(out / "scores.csv"))
        assert len(o) == 12 and (o.seconds == 1.0).all()
        for r in o.itertuples():
            s0 = round(r.start_s * 16000)
            want = audio[(r.track, r.source)][s0 : s0 + 16000]
            got = ds[r.excerpt]["sources"][["lead", "rhythm"].index(r.source)].numpy()
            np.testing.assert_allclose(got, want, atol=1e-6)
        per_excerpt = o.groupby("excerpt").track.nunique()
        assert (per_excerpt == 1).all() if mode == "coherent" else (per_excerpt > 1).any()


def test_generated_excerpts_are_their_own_tracks(tmp_path):
    from transfersep.data.generated import GeneratedExcerpts
    from transfersep.report.blocks import origins_of
    from transfersep.report.scores import read_scores

    ds = GeneratedExcerpts(2, 0.5, 0, "test", 4)
    gp = {"stage": "baseline", "pretrain": "none", "augment": "none", "finetune": "whole", "downstream": "x"}
    res = evaluate(lambda mix: torch.stack([mix * 0.5, mix * 0.5], 1), ds, ["p", "q"], tmp_path, gp)
    assert res["test_data"]["generated"] is True
    o = origins_of(read_scores(tmp_path / "scores.csv"))
    assert list(o.track) == [f"generated-{e}" for e in range(4) for _ in range(2)] and (o.seconds == 0.5).all()
