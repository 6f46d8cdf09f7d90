"""Pitch shift and time stretch: frequencies and time mapping against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import datatrees
from transfersep.data import stems
from transfersep.data.augment import PAD, AugmentSpec, pitch_tempo, source_length
from transfersep.data.cache import StemCache
from transfersep.data.mixing import ExcerptSet

SR = 16000


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    """Dominant frequency by a zero-padded, Hann-windowed FFT (0.1 Hz grid on 10 s)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    return float(np.fft.rfftfreq(8 * len(x), 1 / sr)[spec.argmax()])


def tone(freq: float, seconds: float) -> torch.Tensor:
    t = np.arange(int(seconds * SR)) / SR
    return torch.from_numpy(np.sin(2 * np.pi * freq * t).astype(np.float32))[None]


@pytest.mark.parametrize("semitones,expected", [(3, 523.25), (-3, 369.99), (1, 466.16), (0.5, 452.89)])
def test_pitch_shift_of_a_440_hz_tone(semitones, expected):
    x = tone(440.0, 10.0)  # padded on both sides: the vocoder's context at the edges
    y = pitch_tempo(torch.nn.functional.pad(x, (PAD, PAD)), semitones, 1.0, x.shape[-1])[0].numpy()
    assert y.shape == (10 * SR,)  # same duration
    assert peak_hz(y[SR:-SR]) == pytest.approx(expected, rel=0.01)
    assert np.sqrt(2) * y[SR:-SR].std() == pytest.approx(1.0, abs=0.05)  # level kept


def stepped(freqs: list[float], step: float, seconds: float) -> np.ndarray:
    """A tone whose frequency jumps to freqs[k] at time k*step (continuous phase)."""
    t = np.arange(int(seconds * SR)) / SR
    f = np.asarray(freqs)[np.minimum((t // step).astype(int), len(freqs) - 1)]
    return np.sin(2 * np.pi * np.cumsum(f) / SR).astype(np.float32)


@pytest.mark.parametrize("rate", [0.8, 1.2])
def test_stretched_excerpt_holds_rate_times_ten_seconds_at_source_pitch(rate):
    # source: 0.5-s steps through distinct frequencies; output sample tau must sound the source's
    # frequency at time rate*tau, so the last output second shows the source around rate*10 s
    freqs = [300 + 37 * k for k in range(30)]
    x = stepped(freqs, 0.5, 15.0)
    n = 10 * SR
    y = pitch_tempo(torch.from_numpy(x[: source_length(n, rate)])[None], 0.0, rate, n)[0].numpy()
    checked = 0
    for centre in np.arange(0.25, 10.0, 0.25):
        src_time = (PAD + rate * centre * SR) / SR
        if abs(src_time / 0.5 - round(src_time / 0.5)) * 0.5 < 0.1:
            continue  # too close to a step in the source
        seg = y[int((centre - 0.04) * SR) : int((centre + 0.04) * SR)]
        assert peak_hz(seg) == pytest.approx(freqs[int(src_time // 0.5)], rel=0.03), centre
        checked += 1
    assert checked > 20
    # the whole output spans rate * 10 s of source: the final step sounding is the one at that time
    last = y[int(9.93 * SR) : int(9.99 * SR)]
    assert peak_hz(last) == pytest.approx(freqs[int(((PAD / SR) + rate * 9.96) // 0.5)], rel=0.03)


def test_time_stretch_length_and_pitch():
    x, n_out = tone(440.0, 8.0), int(round(8.0 * SR / 1.25))
    padded = torch.nn.functional.pad(x, (PAD, max(0, source_length(n_out, 1.25) - PAD - x.shape[-1])))
    y = pitch_tempo(padded, 0.0, 1.25, n_out)[0].numpy()
    assert len(y) == int(round(8.0 * SR / 1.25))
    assert peak_hz(y[SR:-SR]) == pytest.approx(440.0, rel=0.01)


def test_identity_is_exact():
    x = torch.randn(2, source_length(SR, 1.0))
    assert torch.equal(pitch_tempo(x, 0.0, 1.0, SR), x[:, PAD : PAD + SR])


def test_absent_stem_stays_silent_and_the_others_are_unchanged():
    # an all-zero stem (an instrument the track lacks) skips the vocoder; the others are processed
    # exactly as without it (the vocoder works on each stem independently)
    n = 2 * SR
    x = torch.randn(2, source_length(n, 1.1))
    with_gap = torch.stack([x[0], torch.zeros_like(x[0]), x[1]])
    y = pitch_tempo(with_gap, 2.0, 1.1, n)
    assert torch.count_nonzero(y[1]) == 0
    torch.testing.assert_close(y[[0, 2]], pitch_tempo(x, 2.0, 1.1, n), rtol=0, atol=1e-5)
    assert torch.count_nonzero(pitch_tempo(torch.zeros(2, source_length(n, 1.1)), 2.0, 1.1, n)) == 0


def test_augment_spec_from_config_and_draws():
    spec = AugmentSpec.from_cfg({"pitch_semitones": [-3, 3], "stretch_rate": None, "incoherent": False})
    rng = np.random.default_rng(0)
    draws = [spec.draw(rng) for _ in range(2000)]
    st = np.array([d[0] for d in draws])
    assert st.min() >= -3 and st.max() <= 3 and abs(st.mean()) < 0.2 and st.std() == pytest.approx(6 / 12**0.5, rel=0.1)
    assert all(r == 1.0 for _, r in draws)
    with pytest.raises(ValueError, match="low, high"):
        AugmentSpec.from_cfg({"stretch_rate": [1.2, 0.8]})


def test_coherent_pitch_shift_is_shared_by_all_stems(tmp_path):
    """Two stems of one song are tones (300 Hz, 500 Hz): after augmentation both moved by the
    same factor, the one the excerpt's plan reports."""
    sr = 44100
    t = np.arange(4 * sr) / sr
    root = tmp_path / "songs"
    for name, f in (("low", 300.0), ("high", 500.0)):
        datatrees.write(root / "train" / "song" / f"{name}.wav", (0.3 * np.sin(2 * np.pi * f * t))[:, None], sr)
    idx = stems.index(root, ["low", "high"], {"low": ["low"], "high": ["high"]})
    spec = AugmentSpec(pitch_semitones=(-3.0, 3.0))
    ds = ExcerptSet(idx.tracks, idx.source_names, StemCache(tmp_path / "c"), 2.0, "coherent", 0, "train", 10, spec)
    for i in range(4):
        plan, item = ds.describe(i), ds[i]
        st = plan["semitones"][0]
        assert plan["semitones"] == [st, st]
        factor = 2 ** (st / 12)
        lo, hi = (peak_hz(item["sources"][c, 4000:-4000].numpy()) for c in range(2))
        assert lo == pytest.approx(300 * factor, rel=0.01) and hi == pytest.approx(500 * factor, rel=0.01)
        assert torch.equal(item["mix"], item["sources"].sum(0))


@pytest.mark.parametrize("semitones,rate", [(3, 1.0), (-2, 1.0), (0, 1.2), (1.5, 0.85)])
def test_note_after_silence_keeps_its_level(semitones, rate):
    """A partial that starts mid-excerpt (after silence) must come out at its level: without
    phase locking its bins kept the silence's phase relations and lost up to 6 dB."""
    n = 8 * SR
    x = tone(523.0, source_length(n, rate) / SR + 0.1)[:, : source_length(n, rate)].clone()
    x[:, : PAD + 2 * SR] = 0  # the note starts 2 s into the excerpt
    y = pitch_tempo(x, semitones, rate, n)[0].numpy()
    start = int(2 * SR / rate) + SR // 2
    assert np.sqrt(2) * y[start : n - SR // 2].std() == pytest.approx(1.0, abs=0.06)
