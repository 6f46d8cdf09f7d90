"""Folds over the test pieces of the downstream sets, on the real layouts of datatrees.py.

Every expected split below is worked out by hand from the trees (sorted names, the rules of the
loaders' docstrings), never by calling the loaders' own rule.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

import datatrees
from project import CONF
from transfersep.data import bach10, build_datamodule, dagstuhl, stems
from transfersep.data.__main__ import main as inspect_main
from transfersep.data.index import DatasetError
from transfersep.data.registry import build_index, fold_info, n_folds
from transfersep.run.config import compose as tool_compose


def held_out(idx) -> list[str]:
    return [t.name for t in idx.split("test")]


def one_line_error(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(DatasetError) as e:
        fn(*args, **kwargs)
    msg = str(e.value)
    assert msg == match and "\n" not in msg
    return msg


# --- Bach10 (tree: 01, 02, 05, 10) -----------------------------------------------------------

BACH10_FOLDS = {0: "10-NunBitten", 1: "01-AchGottundHerr", 2: "02-AchLiebenChristen", 3: "05-DieNacht"}


def test_bach10_folds_shift_the_test_piece(trees):
    for fold, piece in BACH10_FOLDS.items():
        idx = bach10.index(trees["bach10"], fold=fold)
        assert held_out(idx) == [piece]
        assert [t.name for t in idx.split("train")] == [p for p in datatrees.BACH10_PIECES if p != piece]
        assert idx.split("val") == []
        assert idx.notes[0] == f"fold {fold} of 4 (folds 0..3): test pieces ['{piece}']; 3 train / 1 test tracks"
    counts = Counter(n for f in range(4) for n in held_out(bach10.index(trees["bach10"], fold=f)))
    assert counts == dict.fromkeys(datatrees.BACH10_PIECES, 1)
    # another fold-0 piece shifts along the same order
    assert [held_out(bach10.index(trees["bach10"], test_pieces=[2], fold=f)) for f in range(4)] == [
        ["02-AchLiebenChristen"],
        ["05-DieNacht"],
        ["10-NunBitten"],
        ["01-AchGottundHerr"],
    ]


def test_bach10_several_test_pieces(trees):
    # places 0 and 2 of four: evenly spaced, 4 // 2 = 2 folds
    assert held_out(bach10.index(trees["bach10"], test_pieces=[1, 5])) == ["01-AchGottundHerr", "05-DieNacht"]
    assert held_out(bach10.index(trees["bach10"], test_pieces=[1, 5], fold=1)) == [
        "02-AchLiebenChristen",
        "10-NunBitten",
    ]
    one_line_error(
        "bach10: fold 2 out of range: 4 pieces with 2 test pieces make folds 0..1; set fold=0..1",
        bach10.index,
        trees["bach10"],
        test_pieces=[1, 5],
        fold=2,
    )
    # neighbours: shifting by one would test piece 02 again
    one_line_error(
        "bach10: fold 1 out of range: 4 pieces with 2 test pieces make fold 0 only (fold 1 would test a piece "
        "again: the test pieces are not evenly spaced); set fold=0",
        bach10.index,
        trees["bach10"],
        test_pieces=[1, 2],
        fold=1,
    )


TEN = [
    "01-AchGottundHerr",
    "02-AchLiebenChristen",
    "03-ChristederdubistTagundLicht",
    "04-ChristeDuBeistand",
    "05-DieNacht",
    "06-DieSonne",
    "07-HerrGott",
    "08-FuerDeinenThron",
    "09-Jesus",
    "10-NunBitten",
]


def test_bach10_ten_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(datatrees, "BACH10_PIECES", TEN)
    root = datatrees.bach10(tmp_path / "Bach10", seconds=0.1)
    assert held_out(bach10.index(root, fold=1)) == ["01-AchGottundHerr"]
    assert held_out(bach10.index(root, fold=9)) == ["09-Jesus"]
    assert n_folds(build_index("bach10", [str(root)])) == 10
    one_line_error(
        "bach10: fold 12 out of range: 10 pieces with 1 test piece make folds 0..9; set fold=0..9",
        bach10.index,
        root,
        fold=12,
    )


# --- Dagstuhl ChoirSet (eligible: LI FullChoir1, QuartetA1, QuartetA2, QuartetB1; TP QuartetA1, QuartetB1)

LI = ["DCS_LI_FullChoir_Take01", "DCS_LI_QuartetA_Take01", "DCS_LI_QuartetA_Take02", "DCS_LI_QuartetB_Take01"]


def test_dagstuhl_folds_rotate_the_takes(trees):
    splits = lambda **kw: {t.name: t.split for t in dagstuhl.index(trees["dagstuhl"], **kw).tracks}  # noqa: E731
    assert (
        splits(fold=0)
        == splits()
        == {
            "DCS_LI_FullChoir_Take01": "train",
            "DCS_LI_QuartetA_Take01": "train",
            "DCS_LI_QuartetA_Take02": "val",
            "DCS_LI_QuartetB_Take01": "test",
            "DCS_TP_QuartetA_Take01": "train",
            "DCS_TP_QuartetB_Take01": "test",
        }
    )
    assert splits(fold=1) == {
        "DCS_LI_FullChoir_Take01": "train",
        "DCS_LI_QuartetA_Take01": "val",
        "DCS_LI_QuartetA_Take02": "test",
        "DCS_LI_QuartetB_Take01": "train",
        "DCS_TP_QuartetA_Take01": "test",
        "DCS_TP_QuartetB_Take01": "train",
    }
    idx = dagstuhl.index(trees["dagstuhl"], fold=1)
    assert n_folds(idx) == 2 and idx.notes[0].startswith("fold 1 of 2 (folds 0..1): test takes [")
    one_line_error(
        "dagstuhl: fold 2 out of range: piece TP has 2 eligible take(s), the fewest of the pieces, which make "
        "folds 0..1; set fold=0..1",
        dagstuhl.index,
        trees["dagstuhl"],
        fold=2,
    )


def test_dagstuhl_every_take_of_a_piece_is_test_once(trees):
    idx = [dagstuhl.index(trees["dagstuhl"], pieces=["LI"], fold=f) for f in range(4)]
    assert [held_out(i) for i in idx] == [[LI[3]], [LI[2]], [LI[1]], [LI[0]]]
    assert [[t.name for t in i.split("val")] for i in idx] == [[LI[2]], [LI[1]], [LI[0]], [LI[3]]]
    assert Counter(n for i in idx for n in held_out(i)) == dict.fromkeys(LI, 1)
    # both pieces, folds 0..1: TP's two takes each once, no LI take twice
    both = Counter(n for f in range(2) for n in held_out(dagstuhl.index(trees["dagstuhl"], fold=f)))
    assert both == {LI[3]: 1, LI[2]: 1, "DCS_TP_QuartetA_Take01": 1, "DCS_TP_QuartetB_Take01": 1}


def test_dagstuhl_explicit_takes_allow_fold_0_only(trees):
    idx = dagstuhl.index(trees["dagstuhl"], test_takes=["DCS_TP_QuartetA_Take01"], fold=0)
    assert held_out(idx) == ["DCS_TP_QuartetA_Take01"] and n_folds(idx) == 1
    one_line_error(
        "dagstuhl: fold 1 out of range: test_takes/val_takes fix the split (set them to null for the rotating "
        "folds), fold 0 only; set fold=0",
        dagstuhl.index,
        trees["dagstuhl"],
        test_takes=["DCS_TP_QuartetA_Take01"],
        fold=1,
    )


# --- Remixpacks / stem folders (songs A..F sorted; E has no snare) ------------------------------

SONGS = sorted(datatrees.REMIX_SONGS)  # A, B, C, D, E, F


def test_stems_folds_move_the_test_songs(trees):
    kick = lambda **kw: stems.index(trees["remixpacks"], ["kick"], {"kick": ["*kick*", "bd"]}, **kw)  # noqa: E731
    expected = {0: [SONGS[2], SONGS[5]], 1: [SONGS[1], SONGS[4]], 2: [SONGS[0], SONGS[3]]}
    assert held_out(kick()) == expected[0]
    for fold, songs in expected.items():
        assert held_out(kick(fold=fold)) == songs
    assert Counter(n for f in range(3) for n in held_out(kick(fold=f))) == dict.fromkeys(SONGS, 1)
    assert [held_out(kick(test_every=2, fold=f)) for f in range(2)] == [SONGS[1::2], SONGS[0::2]]
    # validation every second song among the rest of fold 1: A, C, D, F -> C, F
    assert [t.name for t in kick(val_every=2, fold=1).split("val")] == [SONGS[2], SONGS[5]]
    one_line_error("stems: fold 3 out of range: test_every=3 makes folds 0..2; set fold=0..2", kick, fold=3)
    one_line_error(
        "stems: fold 1 out of range: test_every=1 leaves nothing to rotate, fold 0 only; set fold=0",
        kick,
        test_every=1,
        fold=1,
    )


def test_remixpacks_folds_with_a_skipped_song(trees):
    idx = [
        stems.index(
            trees["remixpacks"], ["snare", "kick_drum", "cymbals"], name="remixpacks", missing_sources="skip", fold=f
        )
        for f in range(3)
    ]
    assert [held_out(i) for i in idx] == [[SONGS[2], SONGS[5]], [SONGS[1]], [SONGS[0], SONGS[3]]]
    assert idx[1].notes[0] == f"fold 1 of 3 (folds 0..2): test songs ['{SONGS[1]}']; 4 train / 1 test tracks"
    info = fold_info(idx[1])
    assert (info.fold, info.n_folds, info.n_train, info.n_test, info.test) == (1, 3, 4, 1, (SONGS[1],))


def test_stem_split_folders_allow_fold_0_only(trees, tmp_path):
    root = tmp_path / "mystems"
    for split in ("train", "test"):
        shutil.copytree(trees["remixpacks"] / "Artist B - Track Two", root / split / "song")
    assert n_folds(stems.index(root, ["ride"], {"ride": ["ride"]})) == 1
    one_line_error(
        f"stems: fold 1 out of range: {root} has split folders (test/train), which fix the split: fold 0 only; "
        "set fold=0",
        stems.index,
        root,
        ["ride"],
        {"ride": ["ride"]},
        fold=1,
    )


# --- registry, pretraining corpora, the inspection command, configs -----------------------------


def test_registry_passes_the_fold_and_refuses_it_for_pretraining(trees):
    idx = build_index("bach10", [str(trees["bach10"])], fold=2)
    info = fold_info(idx)
    assert (info.fold, info.n_folds, info.n_train, info.n_test) == (2, 4, 3, 1)
    assert info.test == ("02-AchLiebenChristen",)
    # read back from the notes, which an unlabeled copy of the index keeps
    assert fold_info(build_index("bach10", [str(trees["bach10"])], fold=2, unlabeled=True)) == info
    assert n_folds(build_index("musdb", [str(trees["musdb"])])) == 1
    assert n_folds(build_index("musdb", [str(trees["musdb"])], fold=0)) == 1
    for name, roots in (("musdb", [trees["musdb"]]), ("both", [trees["musdb"], trees["slakh"]])):
        one_line_error(
            f"{name}: fold 1 out of range: a pretraining corpus has no downstream test split, fold 0 only; set fold=0",
            build_index,
            name,
            [str(r) for r in roots],
            fold=1,
        )
    for bad in (-1, "two", 1.5, True):
        with pytest.raises(DatasetError, match=r"bach10: fold=.*: expected an integer >= 0"):
            build_index("bach10", [str(trees["bach10"])], fold=bad)


@pytest.mark.parametrize(
    "name,fold,test",
    [
        ("bach10", 3, ["05-DieNacht"]),
        ("dagstuhl", 1, ["DCS_LI_QuartetA_Take02", "DCS_TP_QuartetA_Take01"]),
        ("remixpacks", 2, [SONGS[0], SONGS[3]]),
    ],
)
def test_inspect_command_shows_a_fold(trees, capsys, name, fold, test):
    extra = ["--option", "missing_sources=skip"] if name == "remixpacks" else []
    assert inspect_main([name, str(trees[name]), "--option", f"fold={fold}", "--split", "test", *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in out["tracks"]] == test
    assert out["notes"][0].startswith(f"fold {fold} of ") and str(test) in out["notes"][0]
    assert inspect_main([name, str(trees[name]), "--option", "fold=9", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name}: fold 9 out of range: ") and err.count("\n") == 1


def test_downstream_configs_take_the_top_level_fold():
    assert tool_compose(["downstream=bach10", "fold=3"]).downstream.dataset.fold == 3
    for name in ("bach10", "dagstuhl", "remixpacks", "stems"):
        assert tool_compose([f"downstream={name}"]).downstream.dataset.fold == 0


def test_datamodule_of_a_fold_shares_the_cache(trees, tmp_path):
    def dm(fold: int):
        overrides = [
            f"paths.bach10={trees['bach10']}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "data.excerpt_seconds=1.0",
            "data.batch_size=2",
            "data.n_val=3",
            "data.n_test=5",
            "data.num_workers=0",
            "pretrain=none",
            "downstream=bach10",
            f"fold={fold}",
        ]
        with initialize_config_dir(config_dir=str(CONF), version_base=None):
            return build_datamodule(compose("train", overrides=overrides), "baseline", 3)

    one = dm(1)
    assert [t.name for t in one.test_set.tracks] == ["01-AchGottundHerr"]
    assert (one.description["fold"], one.description["n_folds"]) == (1, 4)
    assert (one.description["train"]["tracks"], one.description["test"]["tracks"]) == (3, 1)
    zero = dm(0)
    assert [t.name for t in zero.test_set.tracks] == ["10-NunBitten"]
    # keyed by audio, not split: both folds precache the same 4 pieces x 4 instruments
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 16
