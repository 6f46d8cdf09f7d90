#!/usr/bin/env bash
# A real one-node SLURM cluster on loopback, for the `slurm` tests and CI.
#
#   sudo scripts/slurm_cluster.sh [up]   install (if missing) + configure + start; waits for `idle`
#   sudo scripts/slurm_cluster.sh down   stop slurmd, slurmctld and munged
#   sudo scripts/slurm_cluster.sh status daemons and `sinfo`
#
# Debian/Ubuntu, as root, no systemd needed: the daemons are started directly and tracked by
# their pid files.  `up` is idempotent: a second call leaves running daemons alone unless the
# generated slurm.conf changed (then they are restarted).
#
# Environment knobs (all optional):
#   SLURM_CLUSTER_TIMEOUT   seconds to wait for the node to become idle (default 90)
#   SLURM_PARTITION_NAME    name of the default partition (default debug)
set -euo pipefail

CONF_DIR=/etc/slurm                 # where Debian's slurm packages look for slurm.conf
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_RUN=/run/munge
MUNGE_PID=$MUNGE_RUN/munged.pid
MUNGE_KEY=/etc/munge/munge.key
CLUSTER_NAME=transfersep
PARTITION=${SLURM_PARTITION_NAME:-debug}
TIMEOUT=${SLURM_CLUSTER_TIMEOUT:-90}
NODE=$(hostname -s)

log() { echo "[slurm_cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 $*): it installs packages and starts daemons"; }

# pid from a pid file, if that process is alive and runs the expected program
alive_pid() {  # $1 pid file, $2 program name
    local pid
    [ -r "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] || return 1
    echo "$pid"
}

stop_pidfile() {  # $1 pid file, $2 program name
    local pid i
    pid=$(alive_pid "$1" "$2") || { rm -f "$1"; return 0; }
    log "stopping $2 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { log "$2 ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" || true; }
    rm -f "$1"
}

install_packages() {
    local missing=() p
    for p in munge slurmctld slurmd slurm-client; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    # Keep maintainer scripts from starting the daemons themselves (no init system here);
    # this script starts them below.  Only remove the policy file if we created it.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! apt-get install "${apt_opts[@]}" "${missing[@]}" >/tmp/slurm_cluster_apt.log 2>&1; then
        log "apt-get install failed; refreshing package lists and retrying"
        apt-get update -q >>/tmp/slurm_cluster_apt.log 2>&1 || true
        apt-get install "${apt_opts[@]}" "${missing[@]}" >>/tmp/slurm_cluster_apt.log 2>&1 || {
            [ $created_policy -eq 1 ] && rm -f $policy
            tail -n 30 /tmp/slurm_cluster_apt.log >&2
            die "apt-get install ${missing[*]} failed (full log: /tmp/slurm_cluster_apt.log)"
        }
    fi
    [ $created_policy -eq 1 ] && rm -f $policy
    return 0
}

start_munge() {
    id munge >/dev/null 2>&1 || die "user 'munge' missing although the munge package is installed"
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating munge key $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
    chown munge:munge "$MUNGE_KEY" && chmod 0400 "$MUNGE_KEY"
    # munged refuses to start unless its dirs belong to the munge user
    mkdir -p "$MUNGE_RUN" /var/lib/munge /var/log/munge
    chown munge:munge "$MUNGE_RUN" /var/lib/munge /var/log/munge
    chmod 0755 "$MUNGE_RUN"
    if alive_pid "$MUNGE_PID" munged >/dev/null; then return 0; fi
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID"
    local i
    for i in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 20 /var/log/munge/munged.log >&2 2>/dev/null || true
    die "munged does not answer (munge -n | unmunge fails); log above"
}

write_conf() {  # writes $1 (a temp file) with the config for this machine
    local node_line cpus mem def_mem
    # slurmd -C prints what slurmd will detect; registering with less than the configured
    # RealMemory/CPUs would drain the node, so the node line is taken from it verbatim.
    node_line=$(slurmd -C | grep '^NodeName=' | head -n1) || true
    [ -n "$node_line" ] || die "'slurmd -C' printed no NodeName line"
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
    [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot read CPUs/RealMemory from: $node_line"
    # A job without --mem gets its cores' share of memory instead of the whole node,
    # so several jobs fit on the node at once.
    def_mem=$(( mem / cpus ))
    cat >"$1" <<EOF
# Generated by scripts/slurm_cluster.sh -- one-node test cluster on loopback. Edits are overwritten.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
# A requeued job may only start again once its old credential expired (default 120 s); the
# requeue tests would wait that long. 30 s still leaves ample time to launch a job step.
AuthInfo=cred_expire=30
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: processes are tracked through /proc, tasks are not bound
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# Cores and memory are consumable, so several small jobs share the node
SchedulerType=sched/backfill
# Look at pending jobs every few seconds (defaults 60/30 s), so a requeued job restarts promptly
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
# A node that comes back after a restart/outage returns to service by itself
ReturnToService=2
SlurmdTimeout=30
SlurmctldTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=300
Waittime=0
MaxArraySize=100001
MaxJobCount=200000
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

daemon_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [ -r "$f" ] && { echo "----- last lines of $f -----"; tail -n 25 "$f"; }
    done >&2
    return 0
}

wait_idle() {
    local deadline=$(( $(date +%s) + TIMEOUT )) state="" resumed=0
    while [ "$(date +%s)" -lt "$deadline" ]; do
        state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true)
        case "$state" in
            idle|mixed|allocated|completing)
                log "node $NODE is $state (partition $PARTITION)"; return 0 ;;
            *drain*|down*|fail*)
                if [ $resumed -lt 3 ]; then
                    log "node $NODE is $state ($(sinfo -h -N -n "$NODE" -o '%E')); resuming it"
                    scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
                    resumed=$(( resumed + 1 ))
                fi ;;
        esac
        sleep 1
    done
    daemon_logs
    die "node $NODE did not become idle within ${TIMEOUT}s (last state: '${state:-no answer from slurmctld}'); daemon logs above"
}

cmd_up() {
    need_root up
    local t0 tmp restart=0
    t0=$(date +%s)
    install_packages
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
        || die "slurmctld/slurmd/sinfo not found after installing the packages"
    id slurm >/dev/null 2>&1 || die "user 'slurm' missing although the slurm packages are installed"
    start_munge

    mkdir -p "$CONF_DIR" "$LOG_DIR" "$CTLD_SPOOL" "$SLURMD_SPOOL"
    chown slurm:slurm "$CTLD_SPOOL" "$LOG_DIR"
    tmp=$(mktemp "$CONF_DIR/.slurm.conf.XXXXXX")
    write_conf "$tmp"
    if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
    else
        chmod 644 "$tmp" && mv -f "$tmp" "$CONF"
        log "wrote $CONF"
        restart=1
    fi
    if [ $restart -eq 1 ]; then
        stop_pidfile "$SLURMD_PID" slurmd
        stop_pidfile "$CTLD_PID" slurmctld
    fi
    if ! alive_pid "$CTLD_PID" slurmctld >/dev/null; then
        log "starting slurmctld"
        # -i: ignore a state file written for another configuration instead of refusing to start
        slurmctld -i || { daemon_logs; die "slurmctld failed to start"; }
    fi
    if ! alive_pid "$SLURMD_PID" slurmd >/dev/null; then
        log "starting slurmd"
        slurmd || { daemon_logs; die "slurmd failed to start"; }
    fi
    wait_idle
    log "cluster up in $(( $(date +%s) - t0 ))s: $(sinfo -h -o '%P %D %c cpus %m MB %T')"
}

cmd_down() {
    need_root down
    stop_pidfile "$SLURMD_PID" slurmd
    stop_pidfile "$CTLD_PID" slurmctld
    stop_pidfile "$MUNGE_PID" munged
    log "cluster stopped"
}

cmd_status() {
    local name pf pid rc=0
    for name in munged:$MUNGE_PID slurmctld:$CTLD_PID slurmd:$SLURMD_PID; do
        pf=${name#*:}; name=${name%%:*}
        if pid=$(alive_pid "$pf" "$name"); then echo "$name: running (pid $pid)"
        else echo "$name: stopped"; rc=1; fi
    done
    if command -v sinfo >/dev/null && sinfo >/dev/null 2>&1; then sinfo -N -l; else echo "sinfo: no answer"; rc=1; fi
    return $rc
}

case "${1:-up}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    -h|--help|help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" ;;
    *) die "unknown subcommand '$1' (use up, down or status)" ;;
esac
