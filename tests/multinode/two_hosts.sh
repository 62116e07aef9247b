#!/usr/bin/env bash
# One mpirun across two "hosts" on one machine: two network namespaces joined by a veth
# pair, each with its own address and hostname, 2 ranks on each. OpenMPI starts the
# remote daemon through a stand-in for ssh (an rsh agent that enters the other
# namespace), and every byte between ranks goes over TCP on the veth link, as between
# two nodes. The tiny config trained this way must give the losses and gradient norms
# of a plain 4-rank mpirun on one host.
#
#   tests/multinode/two_hosts.sh PAJAMA_EXE SOURCE_DIR
#
# Needs root (network namespaces), iproute2's `ip`, util-linux's `unshare` and OpenMPI's
# mpirun (MPIRUN=... to choose one). It FAILS, never skips, when it cannot run. It removes
# what it created (namespaces, veth pair, temp files) on every exit but SIGKILL.
# Environment: MULTINODE_TIMEOUT (seconds per mpirun, default 240), MULTINODE_KEEP=1
# keeps the temp dir (logs, hostfile, metrics) for inspection.
set -euo pipefail

me=two_hosts.sh
fail() {
  echo "$me: FAIL: $*" >&2
  exit 1
}

[[ $# -eq 2 ]] || fail "usage: $me PAJAMA_EXE SOURCE_DIR"
pajama=$1
src=$2
config=$src/configs/tiny.yaml
[[ -x $pajama ]] || fail "pajama executable '$pajama' not found (build the 'pajama' target first)"
[[ -f $config ]] || fail "config '$config' not found"
[[ $(id -u) -eq 0 ]] || fail "needs root to create network namespaces and a veth pair (uid is $(id -u)); run ctest as root"
command -v ip >/dev/null || fail "iproute2's 'ip' command not found (apt-get install iproute2)"
command -v unshare >/dev/null || fail "util-linux's 'unshare' not found"
command -v timeout >/dev/null || fail "coreutils' 'timeout' not found"
mpirun=${MPIRUN:-mpirun}
command -v "$mpirun" >/dev/null || fail "'$mpirun' not found (set MPIRUN)"
mpirun=$(command -v "$mpirun")
mpi_version=$("$mpirun" --version 2>&1 | head -n 1)
[[ $mpi_version == *"(Open MPI)"* || $mpi_version == *"(OpenRTE)"* ]] || fail "needs OpenMPI's mpirun (its rsh launcher and MCA names); '$mpirun --version' says: $mpi_version"
mpi_major=$(sed -n 's/.*) \([0-9]*\)\..*/\1/p' <<<"$mpi_version")
limit=${MULTINODE_TIMEOUT:-240}

id=$$
ns_a=pj-a-$id
ns_b=pj-b-$id
veth_a=pjva$id # interface names: at most 15 characters
veth_b=pjvb$id
addr_a=10.77.0.1
addr_b=10.77.0.2
subnet=10.77.0.0/24 # exists only inside the two namespaces
tmp=
created=()
child=

# Runs "$@" under `timeout` in the background and waits, so that a signal to this script
# is handled at once (bash runs traps only between foreground commands).
run_limited() {
  local seconds=$1 rc=0
  shift
  timeout -k 10 "$seconds" "$@" &
  child=$!
  wait "$child" || rc=$?
  child=
  return "$rc"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local ns pids
  if [[ -n $child ]]; then # interrupted during a run: timeout passes TERM on to mpirun
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  for ns in "${created[@]}"; do
    # Anything still running in a namespace we made was started by this script
    # (mpirun, orted, ranks after a timeout): end it, then remove the namespace,
    # which also destroys the veth end inside it.
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086 # one pid per word
    if [[ -n $pids ]]; then
      kill -TERM $pids 2>/dev/null
      sleep 1
      pids=$(ip netns pids "$ns" 2>/dev/null)
      [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    fi
    ip netns del "$ns" 2>/dev/null || echo "$me: warning: could not remove network namespace $ns" >&2
  done
  # Only left in the root namespace if setup failed before moving it.
  ip link show "$veth_a" >/dev/null 2>&1 && ip link del "$veth_a"
  if [[ -n $tmp && -d $tmp ]]; then
    if [[ ${MULTINODE_KEEP:-0} == 1 ]]; then echo "$me: kept $tmp" >&2; else rm -rf "$tmp"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "$me: FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

stale=$(ip netns list 2>/dev/null | awk '$1 ~ /^pj-[ab]-[0-9]+$/ { print $1 }' | tr '\n' ' ')
[[ -z $stale ]] || echo "$me: note: namespaces from an earlier killed run exist: $stale(ip netns del NAME removes one)" >&2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pajama-multinode.XXXXXX")

# --- two hosts -------------------------------------------------------------------------
for ns in "$ns_a" "$ns_b"; do
  ip netns add "$ns" || fail "'ip netns add $ns' failed: network namespaces unavailable here (a container without CAP_SYS_ADMIN?) or the name is taken"
  created+=("$ns")
done
ip link add "$veth_a" type veth peer name "$veth_b" || fail "could not create veth pair $veth_a/$veth_b (kernel without veth?)"
ip link set "$veth_a" netns "$ns_a" || fail "could not move $veth_a into $ns_a"
ip link set "$veth_b" netns "$ns_b" || fail "could not move $veth_b into $ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$addr_b/24" dev "$veth_b"
ip -n "$ns_a" link set lo up
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set lo up
ip -n "$ns_b" link set "$veth_b" up
ip netns exec "$ns_a" unshare --uts true || fail "'unshare --uts' does not work here (needed to give each host its own hostname)"
netns_a=$(ip netns exec "$ns_a" readlink /proc/self/ns/net)
netns_b=$(ip netns exec "$ns_b" readlink /proc/self/ns/net)

# The stand-in for ssh. OpenMPI runs  AGENT [plm_rsh_args...] HOST COMMAND...  where
# COMMAND is shell text for the remote login shell (` orted -mca ess "env" ...`); the
# environment (PATH, LD_LIBRARY_PATH) passes through `ip netns exec` unchanged, as a
# shared filesystem and identical install would give on a real cluster.
agent=$tmp/rsh-agent.sh
cat >"$agent" <<EOF
#!/bin/sh
ns=
while [ \$# -gt 0 ]; do
  case "\$1" in
    $addr_a) ns=$ns_a; shift; break ;;
    $addr_b) ns=$ns_b; shift; break ;;
    *) shift ;; # an option meant for ssh
  esac
done
[ -n "\$ns" ] || { echo "rsh-agent: no known host ($addr_a, $addr_b) in its arguments" >&2; exit 255; }
echo "\$ns: \$*" >>"$tmp/agent.log"
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns && \$*"
EOF
chmod +x "$agent"

hostfile=$tmp/hostfile
cat >"$hostfile" <<EOF
# one line per node: address (or name), slots = ranks on it
$addr_a slots=2
$addr_b slots=2
EOF

# OpenMPI 4 (ORTE) takes the launcher and out-of-band settings as --mca; 5.x (PRRTE)
# as --prtemca.
if [[ -n $mpi_major && $mpi_major -ge 5 ]]; then rte=--prtemca; else rte=--mca; fi
# shellcheck disable=SC2054 # the comma is in an MCA value
multi=("$mpirun" -np 4 --hostfile "$hostfile" --map-by slot --bind-to none
  --oversubscribe --allow-run-as-root
  "$rte" plm_rsh_agent "$agent"
  "$rte" oob_tcp_if_include "$subnet"
  --mca btl tcp,self --mca btl_tcp_if_include "$subnet"
  -x OMP_NUM_THREADS=1 -x PATH)
[[ -z ${LD_LIBRARY_PATH:-} ]] || multi+=(-x LD_LIBRARY_PATH)
# mpirun runs in host A's namespace, with host A's hostname.
# shellcheck disable=SC2016 # $0 and $@ expand in that shell
on_host_a=(ip netns exec "$ns_a" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$ns_a")

echo "$me: $mpi_version; hosts $ns_a ($addr_a, $veth_a) and $ns_b ($addr_b, $veth_b)"
echo "$me: hostfile:"
sed 's/^/    /' "$hostfile"

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- 1. where do the ranks run? ---------------------------------------------------------
# shellcheck disable=SC2016 # expanded by each rank's shell
probe='echo "rank=$OMPI_COMM_WORLD_RANK local=$OMPI_COMM_WORLD_LOCAL_RANK host=$(hostname) net=$(readlink /proc/self/ns/net)"'
echo "$me: + ${multi[*]} sh -c '...'"
t0=$(now)
if ! run_limited 60 "${on_host_a[@]}" "${multi[@]}" sh -c "$probe" >"$tmp/probe.log" 2>&1; then
  cat "$tmp/probe.log" >&2
  [[ -f $tmp/agent.log ]] && { echo "agent calls:"; cat "$tmp/agent.log"; } >&2
  fail "mpirun could not start 4 ranks over the two hosts (output above)"
fi
sort "$tmp/probe.log" | sed 's/^/    /'
for r in 0 1 2 3; do
  if ((r < 2)); then want="local=$r host=$ns_a net=$netns_a"; else want="local=$((r - 2)) host=$ns_b net=$netns_b"; fi
  grep -qxF "rank=$r $want" "$tmp/probe.log" || fail "rank $r should run with '$want' (see the probe output above)"
done
grep -q "^$ns_b: .*orted" "$tmp/agent.log" || fail "the rsh agent never started a daemon on $addr_b"
if grep -q "^$ns_a:" "$tmp/agent.log"; then fail "mpirun launched host A ($addr_a) through the agent; it should know it is local"; fi
echo "$me: ranks 0,1 on $ns_a and 2,3 on $ns_b, remote daemon started by the agent ($(seconds "$t0" "$(now)") s)"

# --- 2. the same training on one host and on two ---------------------------------------
train=("$pajama" train --config "$config"
  --set train.max_steps=8 --set log.every_steps=1 --set checkpoint.every_steps=0
  --set checkpoint.save_final=false --set train.threads=1 --set model.vocab_size=4097
  --set optim.warmup_steps=3)

one=("$mpirun" -np 4 --oversubscribe --allow-run-as-root --bind-to none -x OMP_NUM_THREADS=1
  "${train[@]}" --set "run.output_dir=$tmp/one-host")
echo "$me: + ${one[*]}"
t0=$(now)
run_limited "$limit" "${one[@]}" >"$tmp/one-host.log" 2>&1 || {
  rc=$?
  tail -n 40 "$tmp/one-host.log" >&2
  fail "the one-host 4-rank run failed (exit $rc$( ((rc == 124)) && echo ", timed out after $limit s"); output above)"
}
t_one=$(seconds "$t0" "$(now)")
: >"$tmp/agent.log"
echo "$me: + ${multi[*]} ${train[*]} --set run.output_dir=$tmp/two-hosts"
veth_bytes() { ip netns exec "$ns_a" cat "/sys/class/net/$veth_a/statistics/$1_bytes"; }
tx0=$(veth_bytes tx)
rx0=$(veth_bytes rx)
t0=$(now)
run_limited "$limit" "${on_host_a[@]}" "${multi[@]}" "${train[@]}" --set "run.output_dir=$tmp/two-hosts" \
  >"$tmp/two-hosts.log" 2>&1 || {
  rc=$?
  tail -n 40 "$tmp/two-hosts.log" >&2
  fail "the two-host run failed (exit $rc$( ((rc == 124)) && echo ", timed out after $limit s"); output above)"
}
t_two=$(seconds "$t0" "$(now)")
grep -q "^$ns_b: .*orted" "$tmp/agent.log" || fail "the two-host training run did not go through the rsh agent"
grep -q "4 rank(s)" "$tmp/two-hosts.log" || fail "the two-host run did not report 4 ranks"
tx=$(($(veth_bytes tx) - tx0))
rx=$(($(veth_bytes rx) - rx0))
# 8 steps of ZeRO-2 move tens of MB between the hosts (gradients and parameters of 1.8M
# fp32 elements, half of each crossing the link per step); less means they did not talk.
((tx > 4000000 && rx > 4000000)) || fail "only $tx bytes sent and $rx received on $veth_a during training"
echo "$me: host A's $veth_a sent $tx and received $rx bytes during the two-host training"
grep "step .*/8 | loss" "$tmp/two-hosts.log" | tail -n 1 | sed 's/^/    /'

# metrics.jsonl -> "step loss grad_norm lr" per line
extract() {
  awk '{
    n = split("step loss grad_norm lr", keys, " ")
    line = ""
    for (i = 1; i <= n; i++) {
      pat = "\"" keys[i] "\":[^,}]*"
      v = match($0, pat) ? substr($0, RSTART + length(keys[i]) + 3, RLENGTH - length(keys[i]) - 3) : "missing"
      line = line (i > 1 ? " " : "") v
    }
    print line
  }' "$1"
}
for run in one-host two-hosts; do
  [[ -s $tmp/$run/metrics.jsonl ]] || fail "$run wrote no metrics.jsonl"
  extract "$tmp/$run/metrics.jsonl" >"$tmp/$run.txt"
done
[[ $(wc -l <"$tmp/one-host.txt") -eq 8 ]] || fail "the one-host run logged $(wc -l <"$tmp/one-host.txt") steps, not 8"
[[ $(wc -l <"$tmp/two-hosts.txt") -eq 8 ]] || fail "the two-host run logged $(wc -l <"$tmp/two-hosts.txt") steps, not 8"

# Same tolerances as tests/trainer/test_train_e2e.cpp: loss 1e-5 relative, gradient
# norm 1e-4 relative, learning rate exact.
paste -d ' ' "$tmp/one-host.txt" "$tmp/two-hosts.txt" | awk '
  function abs(x) { return x < 0 ? -x : x }
  BEGIN {
    printf "    %4s  %-16s %-16s %-9s  %-14s %-14s %-9s\n", "step", "loss 1 host", "loss 2 hosts", "rel diff", "gnorm 1 host", "gnorm 2 hosts", "rel diff"
  }
  {
    dl = abs($6 - $2) / abs($2); dg = abs($7 - $3) / abs($3)
    printf "    %4d  %.12f %.12f %.2e  %.10f %.10f %.2e\n", $1, $2, $6, dl, $3, $7, dg
    if ($1 != $5) { printf "step %s vs %s\n", $1, $5; bad = 1 }
    if (abs($6 - $2) > 1e-5 * abs($2)) { printf "step %d: loss differs by more than 1e-5 relative\n", $1; bad = 1 }
    if (abs($7 - $3) > 1e-4 * abs($3) + 1e-7) { printf "step %d: grad_norm differs by more than 1e-4 relative\n", $1; bad = 1 }
    if ($4 != $8) { printf "step %d: lr %s vs %s\n", $1, $4, $8; bad = 1 }
  }
  END { exit bad }' || fail "the two-host run does not match the one-host run (table above)"
echo "$me: PASS: one mpirun over two hosts (2+2 ranks, TCP over $subnet) matches 4 ranks on one host;" \
  "training ${t_two} s on two hosts vs ${t_one} s on one"
