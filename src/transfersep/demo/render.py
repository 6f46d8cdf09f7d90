"""MIDI writing, FluidSynth rendering and the PCM/mixing helpers shared by every layout.

Every stem is written as its own MIDI file and rendered by its own ``fluidsynth`` process with
reverb and chorus off (a shared synthesizer drifts between parts); mixtures are summed by us from
the quantised stems, so ``mix == sum(stems)`` holds exactly in 16-bit integer units.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

FLUIDSYNTH_HINT = "apt-get install -y fluidsynth"
SOUNDFONT_ENV = "TRANSFERSEP_SOUNDFONT"
# Debian packages timgm6mb-soundfont / fluid-soundfont-gm put their files here.
_DEBIAN_SF2 = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
)


class RenderToolMissing(RuntimeError):
    """FluidSynth or a General MIDI SoundFont is not installed."""


def find_fluidsynth() -> str:
    """Path of the ``fluidsynth`` CLI, or a clear error with the one command that installs it."""
    path = shutil.which("fluidsynth")
    if path is None:
        raise RenderToolMissing(
            "the demo corpus is rendered with the FluidSynth command-line synthesizer, which is not "
            f"installed; install it with:  {FLUIDSYNTH_HINT}"
        )
    return path


def find_soundfont() -> Path:
    """A General MIDI SoundFont: $TRANSFERSEP_SOUNDFONT, pretty_midi's TimGM6mb.sf2, then Debian's."""
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        if not Path(env).is_file():
            raise RenderToolMissing(f"${SOUNDFONT_ENV}={env} is not a file")
        return Path(env)
    candidates: list[Path] = []
    spec = importlib.util.find_spec("pretty_midi")  # located without importing it (a cached call is fast)
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]) / "TimGM6mb.sf2")
    candidates += [Path(p) for p in _DEBIAN_SF2]
    for c in candidates:
        if c.is_file():
            return c
    raise RenderToolMissing(
        "no General MIDI SoundFont found; install one with `.venv/bin/pip install pretty_midi` "
        "(ships TimGM6mb.sf2) or `apt-get install -y timgm6mb-soundfont`, or set "
        f"${SOUNDFONT_ENV}"
    )


def require_pretty_midi() -> None:
    """MIDI files are written with pretty_midi (which also ships the preferred SoundFont)."""
    try:
        import pretty_midi  # noqa: F401
    except ImportError as e:
        raise RenderToolMissing(
            "the demo corpus writes MIDI with pretty_midi, which is not installed; "
            "install it with:  .venv/bin/pip install pretty_midi"
        ) from e


def fluidsynth_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    return out.splitlines()[0].strip() if out else "unknown"


@dataclass
class Part:
    """One MIDI instrument. ``notes`` are (start_s, end_s, pitch, velocity)."""

    name: str
    program: int  # 0-127; ignored for drums (GM standard kit on channel 10)
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)
    is_drum: bool = False
    pan: int | None = None  # MIDI CC10, 0 = left, 64 = centre, 127 = right
    bend_cents: float = 0.0  # a fixed detune (FluidSynth's default bend range is +-2 semitones)


def write_midi(path: Path, parts: list[Part], bpm: float, end_s: float) -> Path:
    """Write ``parts`` as one type-1 MIDI file whose tempo map is ``bpm`` (quarter notes)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=float(bpm))
    for part in parts:
        inst = pretty_midi.Instrument(
            program=0 if part.is_drum else int(part.program), is_drum=part.is_drum, name=part.name
        )
        for start, end, pitch, vel in part.notes:
            inst.notes.append(
                pretty_midi.Note(
                    velocity=int(np.clip(vel, 1, 127)),
                    pitch=int(pitch),
                    start=float(start),
                    end=float(max(end, start + 0.01)),
                )
            )
        if part.pan is not None:
            inst.control_changes.append(pretty_midi.ControlChange(10, int(part.pan), 0.0))
        if part.bend_cents:
            bend = int(np.clip(round(part.bend_cents / 200.0 * 8191), -8192, 8191))
            inst.pitch_bends.append(pretty_midi.PitchBend(bend, 0.0))
        # A no-op volume event at the end keeps FluidSynth's player running until end_s, so
        # release tails are rendered rather than cut at the last note-off.
        inst.control_changes.append(pretty_midi.ControlChange(7, 100, float(end_s)))
        pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


@dataclass(frozen=True)
class Renderer:
    """FluidSynth + SoundFont; picklable so worker processes get it in their job."""

    fluidsynth: str
    soundfont: str
    scratch: str

    def render(self, midi: Path, sr: int, n: int) -> np.ndarray:
        """Render one MIDI file; returns float32 [n, 2] (stereo), zero-padded / trimmed to n."""
        return self.render_many([midi], sr, n)[0]

    def render_many(self, midis: list[Path], sr: int, n: int, at_once: int = 8) -> list[np.ndarray]:
        """Render each MIDI file in its own fluidsynth process, ``at_once`` processes at a time.

        A fluidsynth run is mostly start-up wait (~0.2 s wall, a few ms of CPU for a short stem),
        so overlapping the processes hides that wait without adding CPU load."""
        out: list[np.ndarray] = []
        for k in range(0, len(midis), at_once):
            batch = midis[k : k + at_once]
            wavs, procs = [], []
            try:
                for midi in batch:
                    fd, wav = tempfile.mkstemp(suffix=".wav", dir=self.scratch)
                    os.close(fd)
                    wavs.append(wav)
                    # dynamic sample loading reads only the presets a file uses: a third less CPU
                    # per process, output identical from run to run.
                    cmd = [
                        self.fluidsynth,
                        "-ni",
                        "-q",
                        "-R",
                        "0",
                        "-C",
                        "0",
                        "-g",
                        "0.5",
                        "-o",
                        "synth.dynamic-sample-loading=1",
                        "-O",
                        "float",
                        "-T",
                        "wav",
                        "-F",
                        wav,
                        "-r",
                        str(sr),
                        self.soundfont,
                        str(midi),
                    ]
                    procs.append(
                        subprocess.Popen(
                            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                        )
                    )
                for midi, wav, proc in zip(batch, wavs, procs):
                    err = proc.communicate()[1]
                    if proc.returncode != 0:
                        raise RuntimeError(f"fluidsynth failed on {midi} (rc {proc.returncode}): {err.strip()[-500:]}")
                    out.append(self._read(wav, sr, n, midi))
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                for wav in wavs:
                    if os.path.exists(wav):
                        os.unlink(wav)
        return out

    @staticmethod
    def _read(wav: str, sr: int, n: int, midi: Path) -> np.ndarray:
        audio, got_sr = sf.read(wav, dtype="float32", always_2d=True)
        if got_sr != sr:
            raise RuntimeError(f"fluidsynth wrote {got_sr} Hz for {midi}, asked for {sr} Hz")
        out = np.zeros((n, 2), dtype=np.float32)
        m = min(n, len(audio))
        out[:m] = audio[:m, :2]
        return out

    def render_groups(
        self, groups: list[list[Part]], bpm: float, sr: int, n: int, mono: bool = False
    ) -> list[np.ndarray]:
        """Each group of parts -> one scratch MIDI file -> one fluidsynth process (run together).
        Returns [n, 2] float32 per group, or [n] when ``mono`` (the channels' mean)."""
        midis = []
        try:
            for parts in groups:
                fd, tmp = tempfile.mkstemp(suffix=".mid", dir=self.scratch)
                os.close(fd)
                midis.append(write_midi(Path(tmp), parts, bpm, n / sr))
            audio = self.render_many(midis, sr, n)
        finally:
            for m in midis:
                m.unlink(missing_ok=True)
        return [a.mean(axis=1) if mono else a for a in audio]


def db(x: float) -> float:
    return float(10.0 ** (x / 20.0))


def peak_gain(signals: list[np.ndarray], peak: float) -> float:
    """Gain that brings the sum of ``signals`` to ``peak`` (full scale = 1)."""
    top = float(np.max(np.abs(np.sum(signals, axis=0))))
    if top <= 0:
        raise RuntimeError("rendered mixture is silent: check the SoundFont and the MIDI notes")
    return peak / top


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] -> int16, rounding; clipping is an error (every caller leaves headroom)."""
    q = np.round(np.asarray(x, dtype=np.float64) * 32767.0)
    if np.abs(q).max(initial=0) > 32767:
        raise RuntimeError("signal clips at 16 bits; lower the mixing peak")
    return q.astype(np.int16)


def mix_pcm16(stems: list[np.ndarray], peak: float) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Scale float stems together so their sum peaks at ``peak``; quantise each to int16 and sum the
    quantised stems, so the written mix equals the written stems' sum exactly. Returns
    (stems_int16, mix_int16, gain)."""
    gain = peak_gain(stems, peak)
    q = [to_pcm16(s * gain) for s in stems]
    total = np.sum([s.astype(np.int32) for s in q], axis=0)
    if np.abs(total).max() > 32767:
        raise RuntimeError("quantised mix clips at 16 bits; lower the mixing peak")
    return q, total.astype(np.int16), gain


def write_audio(path: Path, data: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def lowpass(x: np.ndarray, sr: int, fc: float, order: int = 2) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(order, fc, "lowpass", fs=sr, output="sos"), x, axis=0).astype(np.float32)


def highpass(x: np.ndarray, sr: int, fc: float, order: int = 2) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(order, fc, "highpass", fs=sr, output="sos"), x, axis=0).astype(np.float32)


def room(x: np.ndarray, sr: int, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """A plain room: convolution with exponentially decaying noise (deterministic from ``rng``)."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    ir *= wet / np.sqrt(np.sum(ir**2))
    ir[0] += 1.0
    return fftconvolve(x, ir.astype(np.float32), mode="full")[: len(x)].astype(np.float32)
