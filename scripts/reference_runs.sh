#!/usr/bin/env bash
# Reference runs for a refactoring that must not change behaviour (issue 21): every kind, a conv run with a
# learned sigma, a resumed run and the default study, each trained, evaluated and reported with fixed seeds and
# threads. Run it on the code before and after the change, then compare the two folders with
# `python scripts/reference_digest.py BEFORE AFTER` (timing fields aside, every file must be byte-identical).
#
#   bash scripts/reference_runs.sh OUT [SRC]   # SRC: the src/ folder whose vaelab to run (default: this checkout's)
set -euo pipefail
out=$(realpath -m "$1")
src=$(realpath "${2:-$(dirname "$0")/../src}")
mkdir -p "$out"
export PYTHONPATH="$src" VAELAB_DATA_DIR="$out/.cache"
v() { python -m vaelab "$@"; }
common=(--epochs 2 --threads 2 --quiet)
v train "${common[@]}" --eval --out "$out/vae" > "$out/vae.stdout"
v train "${common[@]}" --eval --arch conv --likelihood gaussian --learn-sigma --out "$out/conv-sigma" > "$out/conv-sigma.stdout"
v train "${common[@]}" --eval --kind gan --out "$out/gan" > "$out/gan.stdout"
v train "${common[@]}" --eval --kind vaegan --out "$out/vaegan" > "$out/vaegan.stdout"
v train "${common[@]}" --eval --kind iwae --k 5 --out "$out/iwae" > "$out/iwae.stdout"
v train "${common[@]}" --eval --kind vamp --out "$out/vamp" > "$out/vamp.stdout"
v train "${common[@]}" --eval --kind cvae --out "$out/cvae" > "$out/cvae.stdout"
v train --epochs 1 --threads 2 --quiet --out "$out/resumed" > "$out/resumed-1.stdout"
v train --epochs 3 --threads 2 --quiet --resume --eval --out "$out/resumed" > "$out/resumed-2.stdout"
v fit-sampler "$out/vae" > "$out/fit-sampler.stdout"
v eval "$out/vae" --iwae-k 50 --quiet > "$out/vae-eval.stdout"
v eval "$out/gan" --json --quiet > "$out/gan-eval.json"
v sample "$out/vae" --sampler gmm --out "$out/vae-gmm.png" > /dev/null
v sample "$out/cvae" --label 3 --out "$out/cvae-3.png" > /dev/null
v manifold "$out/conv-sigma" --dims 0 1 --out "$out/conv-manifold.png" > /dev/null
v interpolate "$out/vae" --spherical --out "$out/vae-slerp.png" > /dev/null
v compare --epochs 2 --threads 2 --quiet --out "$out/compare" > "$out/compare.stdout"
echo "reference runs in $out"
