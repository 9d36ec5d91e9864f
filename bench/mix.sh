#!/usr/bin/env bash
# Benchmark of `callrec mix` against peers measured in the same run:
#   - ffmpeg: amerge of the two legs + libmp3lame 32k (the usual one-liner),
#   - bare LAME: the `lame` CLI encoding the already-mixed stereo file with
#     the same settings as callrec (CBR 32 kbps, plain stereo, same -q),
# on two 1-hour 8 kHz legs of real speech (espeak-ng). Prints wall times,
# ratios and peak memory; memory is also measured on 10-minute legs to show
# that it does not depend on the input length.
# Usage: bench/mix.sh [minutes=60]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
out=bench/out; mkdir -p "$out"

need() { command -v "$1" >/dev/null || { echo "installing $2"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need ffmpeg ffmpeg; need sox sox; need espeak-ng espeak-ng; need lame lame; [ -x /usr/bin/time ] || need time time

cargo build --release -q -p callrec
bin=target/release/callrec

make_leg() { # name, text, minutes
  local f="$out/$1-$3m.wav"
  if [ ! -f "$f" ]; then
    espeak-ng -w "$out/$1-src.wav" "$2"
    local secs; secs=$(soxi -D "$out/$1-src.wav")
    local reps; reps=$(python3 -c "import math;print(math.ceil($3*60/$secs))")
    sox "$out/$1-src.wav" -r 8000 -c 1 -b 16 "$f" repeat "$reps" trim 0 "$(( $3 * 60 ))"
  fi
  echo "$f"
}
customer_text="Hello, I am calling about my last invoice. I was charged twice for the same order and I would like a refund, please. My account number is four five six seven."
agent_text="Thank you for calling. I am sorry to hear that. Let me look at your account. I can see the two charges, and I will refund the second one right away."

# wall seconds and peak RSS (KiB) of a command
measure() {
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" || { cat "$out/stderr.txt"; exit 1; }
  cat "$out/time.txt"
}

A=$(make_leg customer "$customer_text" "$minutes"); B=$(make_leg agent "$agent_text" "$minutes")
q=${MP3_QUALITY:-7} # callrec's default
read -r t_mp3 m_mp3 < <(measure "$bin" mix --end-user "$A" --agent "$B" -o "$out/callrec.mp3" --mp3-quality $q)
read -r t_wav m_wav < <(measure "$bin" mix --end-user "$A" --agent "$B" -o "$out/callrec.wav")
read -r t_ff m_ff < <(measure ffmpeg -nostdin -y -i "$A" -i "$B" -filter_complex amerge=inputs=2 -ar 8000 -ac 2 -c:a libmp3lame -b:a 32k "$out/ffmpeg.mp3")
read -r t_ffq m_ffq < <(measure ffmpeg -nostdin -y -i "$A" -i "$B" -filter_complex amerge=inputs=2 -ar 8000 -ac 2 -c:a libmp3lame -b:a 32k -compression_level $q "$out/ffmpeg-q$q.mp3")
# bare LAME on the same (already mixed) audio, same settings
read -r t_lame m_lame < <(measure lame --silent -m s -b 32 --cbr --resample 8 -q $q "$out/callrec.wav" "$out/lame.mp3")

# memory against input length: 10-minute legs
A10=$(make_leg customer "$customer_text" 10); B10=$(make_leg agent "$agent_text" 10)
read -r t_mp3_10 m_mp3_10 < <(measure "$bin" mix --end-user "$A10" --agent "$B10" -o "$out/callrec10.mp3" --mp3-quality $q)

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
rt() { python3 -c "print(f'{$minutes*60/$1:.0f}')"; }
cat <<REPORT
callrec mix benchmark: two ${minutes}-minute 8 kHz speech legs ($(nproc) cores, $(date -u +%F))
  callrec mix -> mp3 (q$q)   ${t_mp3} s  ($(rt "$t_mp3")x real time)  peak RSS ${m_mp3} KiB
  callrec mix -> wav         ${t_wav} s  ($(rt "$t_wav")x real time)  peak RSS ${m_wav} KiB
  ffmpeg amerge+libmp3lame  ${t_ff} s  (LAME default quality)     peak RSS ${m_ff} KiB
  ffmpeg ... -compression_level $q  ${t_ffq} s
  bare lame -q$q (pre-mixed)  ${t_lame} s
ratios:
  ffmpeg / callrec mp3            $(ratio "$t_ff" "$t_mp3")x   (target >= 2)
  ffmpeg(q$q) / callrec mp3         $(ratio "$t_ffq" "$t_mp3")x   (same LAME quality)
  callrec mp3 / bare lame         $(ratio "$t_mp3" "$t_lame")    (target <= 1.10)
memory against input length:
  10-minute legs: peak RSS ${m_mp3_10} KiB; ${minutes}-minute legs: ${m_mp3} KiB
REPORT
