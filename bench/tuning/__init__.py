"""What each CPU training setting does to throughput (and, where it can, to accuracy), in one run.

Sections (select with --only):
  threads    tf.config.threading intra_op x inter_op in {1, 2} against TensorFlow's default
  onednn     TF_ENABLE_ONEDNN_OPTS=0 against 1 (the default on x86)
  precision  float32 against Keras' 'mixed_bfloat16' policy, and against oneDNN's bf16 math mode for
             float32 matmuls and convolutions (TF_SET_ONEDNN_FPMATH_MODE=BF16, the CPU's counterpart
             of TF32: `enable_tensor_float_32_execution` only acts on GPUs); speed and accuracy
  pipeline   NumPy arrays to model.fit against tf.data with cache, shuffle, batch, prefetch(AUTOTUNE)
  xla        model.compile(jit_compile=True) against the default (False on a CPU-only machine)
  batch      batch size 64/128/256/512: speed, and test accuracy after one epoch on 10,000 images
  logging    studyflow's per-epoch batched MLflow logging against asynchronous and per-step logging
  startup    imports and CLI start in fresh processes; `studyflow run pca --profile quick`: when
             Prefect logs the flow's start and the first task's first line, and the total
Models: CNN-1 and MLP-1 (MNIST) and the multi-task model (MTL, lambda 0.5, Fashion-MNIST).

Throughput is samples/s over steady-state training steps: each model and setting is warmed up
first, then each repeat is one `model.fit` call timed from its third step over a fixed number of
steps (the same number of samples at every batch size); the median of the repeats is reported.
Settings read when TensorFlow starts (threads, oneDNN, math mode) run in their own process and are
compared with the default measured in processes of its own, at the start and at the end (their
ratio, `drift`, says how steady the machine was). In-process settings are measured alternately
with an in-process default. Every ratio is against the default of the same model.

A precision setting that leaves every test accuracy exactly equal to float32's did not change the
arithmetic: its speed ratio is then noise. That is what TF_SET_ONEDNN_FPMATH_MODE=BF16 did in the
smoke test on the development machine (AMD EPYC, avx512_bf16, no AMX; oneDNN 3.7); ONEDNN_VERBOSE=1
on a conv2d and a matmul showed why: the convolution carries `attr-fpmath:bf16` but still runs the
f32 kernel, and the matmul goes through oneDNN's sgemm, which ignores the mode. `mixed_bfloat16`
does compute in bf16 (its variables stay float32).

Run: .venv/bin/python -m bench.tuning [--quick] [--only threads,batch,...] [--out DIR]
     --quick: MLP-1 only, one setting of each kind, tiny step counts, the default process once (its
     figures stand for the end's too: no drift): a smoke test of every path (its JSON goes to a
     temporary folder unless --out names one). The full run is long: MTL, the
     slowest model per step, gets the fewest steps; `wall_s` in bench/results/tuning.json is the
     last full run's duration.

The package: `plan` (what is measured, and how much), `measure` (timing training inside a worker
process), `workers` (running those processes), one module per lever (`training`, `mlflow_logging`,
`startup`), and `__main__` (the command line).
"""
