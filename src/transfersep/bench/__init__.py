"""Benchmarks of the tool: ``python -m transfersep.bench [--quick]`` (``make bench``).

Training step (paper and small configs) against the plain PyTorch version, the DC loss against
its naive low-rank autograd form, bf16 against fp32, SI-SDR, the evaluation against its plain path
with its FLOP floor (``bench.flops``), the probe's torch k-means against scikit-learn's
(``bench.probe``), loader throughput, separation speed and, on GPUs, the DDP step (``bench.ddp``;
``--gpu-check`` is scripts/gpu_check.sh); medians with min and max, side-by-side ratios, and the
machine they came from.
See ``transfersep.bench.measure`` for how time and memory are measured.
"""
