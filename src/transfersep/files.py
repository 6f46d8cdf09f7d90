"""The names of the files in a run directory (``<runs_dir>/<study>/<stage>/<run>/``).

Every module that writes or reads one of them takes its name from here; nothing else in the
package spells them out. This module imports nothing, so the lightest command can use it.
"""

STATUS = "status.json"  # the run's state, grid point, job and result (run.records)
LOCK = "lock.json"  # which job owns the run directory (run.lock)
TRAIN_LOG = "train.log"  # the run's log, appended across resumes (run.console)
LAST_CKPT = "checkpoints/last.ckpt"  # the training state a killed run resumes from (run.resume)
FINAL_CKPT = "final.ckpt"  # the trained run's Lightning checkpoint (run.fit)
PACKAGE = "model.safetensors"  # the trained model as a self-describing package (model.package)
SCORES = "scores.csv"  # SI-SDR per test excerpt and source (evaluation.evaluate)
RESULT = "result.json"  # the evaluation's summary, written last (evaluation.evaluate)
CURVE = "curve.csv"  # SI-SDR along training (evaluation.curve)
