# bastion durable-job wrapper: run on the node as `sh -c WRAPPER bastion-job ACTION JOB [ARGS]`.
# POSIX sh plus setsid, tail -c and head -c; no Python needed on the node.
# Actions: start JOB CMD; run JOB TIMEOUT CMD (start, then wait: for mosh); attach JOB OUT ERR;
# result JOB; kill JOB GRACE; clean JOB; list; clean-finished.
# See docs/flaky-links.md. Exit codes: 0 done, 64 bad job id, 69 setsid missing,
# 70 cannot create the job directory, 75 job already started, 76 no such job, 77 not finished.
set -u
umask 077
root="$HOME/.bastion"
base="$root/jobs"
action=${1:-}
job=${2:-}

case $action in
    list|clean-finished) ;;
    *)
        case $job in
            ''|.*|*[!A-Za-z0-9._:-]*) echo "bastion-job: bad job id" >&2; exit 64 ;;
        esac
        dir="$base/$job" ;;
esac

# The keeper: a session of its own, so nothing that happens to the SSH session reaches it.
# It runs the command in another session (its process group is the one a timeout signals),
# and records the exit code once the command is done.
# shellcheck disable=SC2016 # expanded by the keeper's own shell, not here
keeper='
dir=$1
cd "$HOME" 2>/dev/null || cd /
setsid "${SHELL:-/bin/sh}" -c "$(cat "$dir/cmd")" <"$dir/in" >>"$dir/out" 2>>"$dir/err" &
pid=$!
echo "$pid" >"$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
wait "$pid"
rc=$?
echo "$rc" >"$dir/rc.tmp" && mv "$dir/rc.tmp" "$dir/rc"
'

# Print FILE from byte OFFSET to its current end; sets `sent_to` to the new offset.
send_from() {
    size=$(wc -c <"$1") || return 1
    size=$((size + 0))
    sent_to=$2
    [ "$size" -gt "$2" ] || return 0
    tail -c +"$(($2 + 1))" "$1" | head -c "$((size - $2))" || return 1
    sent_to=$size
}

nap() {
    sleep 0.2 2>/dev/null || sleep 1
}

# Start the job once: 0 started now, 75 already started, else a failure.
start_job() {
    command -v setsid >/dev/null 2>&1 || { echo "bastion-job: setsid not found" >&2; return 69; }
    mkdir -p "$base" && chmod 700 "$root" "$base" || return 70
    # mkdir is atomic: of two starts of one job, exactly one gets here.
    if ! mkdir "$dir" 2>/dev/null; then
        [ -d "$dir" ] && return 75
        echo "bastion-job: cannot create $dir" >&2
        return 70
    fi
    printf '%s\n' "$1" >"$dir/cmd"
    : >"$dir/in"
    : >"$dir/out"
    : >"$dir/err"
    date +%s >"$dir/started"
    setsid sh -c "$keeper" bastion-keeper "$dir" </dev/null >/dev/null 2>&1 &
    return 0
}

# Signal the command's process group: TERM, a grace period, then KILL.
kill_job() {
    tries=0
    while [ ! -f "$dir/pid" ] && [ "$tries" -lt 25 ]; do
        nap
        tries=$((tries + 1))
    done
    [ -f "$dir/pid" ] || return 77
    pid=$(cat "$dir/pid")
    kill -s TERM -- "-$pid" 2>/dev/null
    sleep "$1"
    kill -s KILL -- "-$pid" 2>/dev/null
    return 0
}

case $action in
start)
    start_job "$3"
    exit $?
    ;;
run)
    # For a mosh session: start (or find) the job, then wait for it on the node, stopping it
    # TIMEOUT seconds (0: none) after it started, on the node itself: the client may have no
    # link at that moment.
    start_job "$4"
    started=$?
    [ "$started" -eq 0 ] || [ "$started" -eq 75 ] || exit "$started"
    echo "bastion-job $job running"
    limit=$3
    begun=$(cat "$dir/started")
    while [ ! -f "$dir/rc" ]; do
        if [ "$limit" -gt 0 ] && [ ! -f "$dir/timedout" ] \
            && [ $(($(date +%s) - begun)) -gt "$limit" ]; then
            : >"$dir/timedout"
            kill_job 1
        fi
        nap
    done
    echo "bastion-job $job done: rc $(cat "$dir/rc")"
    exit 0
    ;;
attach)
    # Stream stdout and stderr from the given offsets until the job is done and all is sent.
    [ -d "$dir" ] || exit 76
    out_at=${3:-0}
    err_at=${4:-0}
    while :; do
        finished=0
        [ -f "$dir/rc" ] && finished=1
        send_from "$dir/out" "$out_at" || exit 1
        out_at=$sent_to
        send_from "$dir/err" "$err_at" >&2 || exit 1
        err_at=$sent_to
        [ "$finished" -eq 1 ] && exit 0
        # The client is gone (its sshd session ended): stop polling.
        kill -0 "$PPID" 2>/dev/null || exit 1
        nap
    done
    ;;
result)
    [ -d "$dir" ] || exit 76
    [ -f "$dir/rc" ] || exit 77
    # The exit code, and "timeout" when `run` stopped the job at its deadline.
    if [ -f "$dir/timedout" ]; then echo "$(cat "$dir/rc") timeout"; else cat "$dir/rc"; fi
    ;;
kill)
    [ -d "$dir" ] || exit 76
    kill_job "${3:-1}"
    exit $?
    ;;
clean)
    rm -rf "$dir"
    ;;
list)
    # One job a line: id, state, exit code (or -), start time (epoch), command's first line.
    [ -d "$base" ] || exit 0
    for d in "$base"/*; do
        [ -d "$d" ] || continue
        if [ -f "$d/rc" ]; then state="done"; rc=$(cat "$d/rc"); else state=running; rc=-; fi
        started=$(cat "$d/started" 2>/dev/null || echo 0)
        cmd=$(head -n 1 "$d/cmd" 2>/dev/null)
        printf '%s\t%s\t%s\t%s\t%s\n' "${d##*/}" "$state" "$rc" "$started" "$cmd"
    done
    ;;
clean-finished)
    [ -d "$base" ] || exit 0
    for d in "$base"/*; do
        [ -f "$d/rc" ] && rm -rf "$d" && printf '%s\n' "${d##*/}"
    done
    exit 0
    ;;
*)
    echo "bastion-job: unknown action '$action'" >&2
    exit 64
    ;;
esac
