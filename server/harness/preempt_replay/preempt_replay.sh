#!/usr/bin/env bash
# Replays the preempting lane's transaction with pgbench and reports the database CPU it
# costs: a diagnostic for the settlement benchmark's preemption run (BENCHMARKS.md), which
# measures throughput but not where it goes.
#
#   server/harness/preempt_replay/preempt_replay.sh [clients] [transactions per client]
#
# Needs a PostgreSQL 15 cluster on this machine reachable as the superuser given by the
# usual PG* variables (PGHOST, PGPORT, PGUSER), and pgbench. It builds a template database
# (every migration, then setup.sql), copies it afresh, runs group.sql (16 preempting
# bookings per transaction), and prints the throughput and the database CPU per
# transaction: the user and system time of the backends the postmaster reaped during the
# run, so nothing else should use the cluster meanwhile. Defaults: 2 clients, 60
# transactions each. The booking statement in group.sql is a copy of book::book's; keep it
# in step when that statement changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
clients=${1:-2}
per_client=${2:-60}
template=rigshift_replay_template
run=rigshift_replay

psql -q -v ON_ERROR_STOP=1 -d postgres -c "set client_min_messages = warning" -c "drop database if exists $run" -c "drop database if exists $template" -c "create database $template"
for m in "$root"/migrations/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -d "$template" -f "$m" > /dev/null
done
psql -q -v ON_ERROR_STOP=1 -d "$template" -f "$here/setup.sql" > /dev/null
t0=$(psql -Atq -d "$template" -c "select extract(epoch from t0)::bigint from replay_t0")
psql -q -v ON_ERROR_STOP=1 -d postgres -c "create database $run template $template"

data=$(psql -Atq -d postgres -c "show data_directory")
postmaster=$(head -1 "$data/postmaster.pid")
ticks=$(getconf CLK_TCK)
reaped() { awk '{print $16 + $17}' "/proc/$postmaster/stat"; }
before=$(reaped)
out=$(pgbench -n -M prepared -c "$clients" -j "$clients" -t "$per_client" -D "t0=$t0" -f "$here/group.sql" "$run" 2>&1)
sleep 1
after=$(reaped)
tps=$(grep -E '^tps' <<< "$out" | cut -d' ' -f3)
failed=$(grep -oE 'failed transactions: [0-9]+' <<< "$out" || echo "failed transactions: ?")
echo "$clients clients x $per_client transactions of 16 preempting bookings: $tps transactions/s, $failed"
echo "database CPU per transaction: $(echo "scale=2; ($after - $before) * 1000 / $ticks / ($clients * $per_client)" | bc) ms"
echo "cuts made: $(psql -Atq -d "$run" -c "select count(*) from allocation_cut where reason = 'preempted'")"
