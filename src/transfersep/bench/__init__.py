"""Benchmarks of the tool: ``python -m transfersep.bench [--quick]`` (``make bench``).

Training step (paper and small configs) against the plain PyTorch version, the DC loss against
its naive low-rank autograd form, bf16 against fp32, SI-SDR evaluation, loader throughput and
separation speed; medians with min and max, side-by-side ratios, and the machine they came from.
See ``transfersep.bench.measure`` for how time and memory are measured.
"""
