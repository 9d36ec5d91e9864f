#!/usr/bin/env bash
# Speech quality of callrec's MP3 (8 kHz, CBR 32 kbps, plain stereo) at each
# LAME quality level, measured, not assumed: ITU-T P.862 PESQ narrowband
# (the `pesq` package from PyPI, in a private venv) and SNR, per channel, on
# 60 s of espeak-ng speech in three voices (English male on the left and
# US-English female / Spanish on the right). The MP3s are made by
# `callrec mix --mp3-quality Q` and decoded by ffmpeg.
# This is what decided the default (Mp3Settings::DEFAULT, BENCHMARKS.md).
# Usage: bench/mp3_quality.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out/quality; mkdir -p "$out"
for t in ffmpeg sox espeak-ng python3; do command -v "$t" >/dev/null || { echo "needs $t (scripts/install-test-deps.sh)"; exit 1; }; done
[ -x "$out/venv/bin/python" ] || { python3 -m venv "$out/venv" && "$out/venv/bin/pip" install -q pesq numpy soundfile; }
cargo build --release -q -p callrec
bin=target/release/callrec
leg() { # name, voice, text
  espeak-ng -v "$2" -w "$out/$1-src.wav" "$3"
  sox "$out/$1-src.wav" -r 8000 -c 1 -b 16 "$out/$1.wav" repeat 20 trim 0 60
}
leg en en "Hello, I am calling about my last invoice. I was charged twice for the same order and I would like a refund, please."
leg us en-us+f3 "Good morning, my name is Laura and I am calling from the billing department. Could you confirm the last four digits of the card you used?"
leg es es "Buenos días, le llamo porque el pedido que hice la semana pasada todavía no ha llegado y necesito saber cuándo lo van a entregar."
for pair in en:us en:es; do
  a=${pair%%:*}; b=${pair##*:}
  for q in 2 3 5 7 9; do
    "$bin" mix --end-user "$out/$a.wav" --agent "$out/$b.wav" -o "$out/$a-$b-q$q.mp3" --mp3-quality "$q"
    ffmpeg -v error -y -i "$out/$a-$b-q$q.mp3" -ar 8000 -ac 2 -f wav "$out/$a-$b-q$q.dec.wav"
  done
done
"$out/venv/bin/python" - "$out" <<'PY'
import sys, numpy as np, soundfile as sf
from pesq import pesq
out = sys.argv[1]
print("LAME q | pair  | PESQ-NB left | PESQ-NB right | SNR left | SNR right")
for pair in ("en-us", "en-es"):
    a, b = pair.split("-")
    ref = [sf.read(f"{out}/{v}.wav", dtype="int16")[0].astype(float) for v in (a, b)]
    for q in (2, 3, 5, 7, 9):
        deg = sf.read(f"{out}/{pair}-q{q}.dec.wav", dtype="int16")[0].astype(float)
        cols = []
        for ch in (0, 1):
            n = min(len(ref[ch]), len(deg))
            r, d = ref[ch][:n], deg[:n, ch]
            p = np.mean([pesq(8000, r[i:i + 80000], d[i:i + 80000], "nb") for i in range(0, n - 79999, 80000)])
            snr = 10 * np.log10(np.sum(r ** 2) / np.sum((r - d) ** 2))
            cols.append((p, snr))
        print(f"{q:6} | {pair} | {cols[0][0]:12.3f} | {cols[1][0]:13.3f} | {cols[0][1]:6.1f} dB | {cols[1][1]:7.1f} dB")
PY
