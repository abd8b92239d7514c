#!/bin/bash
# A shell script as people write them: string and arithmetic work in bash
# itself, and a stream of small external commands (each a fork and exec).
set -u
declare -A count
total=0
for ((i = 0; i < 300000; i++)); do
  word="w$(( (i * 7919) % 263 ))"
  count[$word]=$(( ${count[$word]:-0} + 1 ))
  s=${word//w/x}
  total=$(( (total + ${#s} * i) % 1000003 ))
done
lines=0
for ((j = 0; j < 40; j++)); do
  out=$(printf '%s\n' "line $j" "other $((j * 3))" | sed -e 's/line/LINE/' | sort)
  lines=$(( lines + ${#out} ))
done
keys=$(printf '%s\n' "${!count[@]}" | sort | head -n 3 | tr '\n' ' ')
echo "total=$total lines=$lines distinct=${#count[@]} first=$keys"
