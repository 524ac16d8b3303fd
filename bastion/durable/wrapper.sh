# bastion durable-job wrapper: run on the node as `sh -c WRAPPER bastion-job ACTION JOB [ARGS]`.
# POSIX sh plus setsid, tail -c, head -c and ps; no Python needed on the node.
# Actions: start JOB CMD; attach JOB OUT ERR; result JOB; kill JOB GRACE; clean JOB; list;
# clean-finished; serve JOB TIMEOUT OUT ERR LINES WIDTH CMD (for a mosh session: start, then
# show the spools page by page on the screen, for the client to read off and acknowledge).
# See docs/flaky-links.md. Exit codes: 0 done, 64 bad job id or arguments, 69 setsid missing,
# 70 cannot create the job directory, 75 job already started, 76 no such job, 77 not finished,
# 78 serve without a terminal.
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
    # "stopped" only once no process of the group runs: the login user cannot signal a
    # command run through sudo, but sudo's guard (bastion/sudo_guard.sh), which is in this
    # group, leaves only after it has stopped that command's own group.
    tries=0
    while group_alive "$pid"; do
        [ "$tries" -ge 50 ] && return 0
        nap
        tries=$((tries + 1))
    done
    : >"$dir/stopped"
    return 0
}

# Whether a process of group $1 still runs (zombies aside). Without ps, nothing is verified.
group_alive() {
    states=$(ps -e -o pgid= -o stat= 2>/dev/null) || return 0
    [ -n "$states" ] || return 0
    printf '%s\n' "$states" | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# The pager of a mosh session. mosh synchronises a screen, not a byte stream, so the output
# goes as pages: each repaints the whole screen (clear first), row 1 is left blank for
# mosh's own notification bar, then
#   BASTION-PAGE N STREAM OFFSET LENGTH TOTAL ENCODING CRC
#   LENGTH bytes of STREAM from OFFSET, base64 (or hex), in lines of at most WIDTH characters
#   BASTION-FIN N
# where CRC is `cksum` of the header's first six fields and a newline, then the bytes. A
# page is shown as soon as there is output the client has not acknowledged, even while the
# job runs; with none, `BASTION-WAIT N OUT ERR`; once the job has ended and all is shown,
# `BASTION-END N RC TIMEDOUT OUT ERR CRC` (CRC: `cksum` of "N RC TIMEDOUT OUT ERR\n").
# N counts screens. Keys: n (the page is read: next), r (draw the screen again), q (at the
# end: remove the job directory and leave). With the job over and no key for 10 minutes
# (the client is gone for good), the pager leaves and the job stays for `bastion jobs`.
serve_pages() {
    limit=$1
    out_at=$2
    err_at=$3
    lines=$4
    width=$5
    if command -v base64 >/dev/null 2>&1; then
        enc=b64
        width=$((width / 4 * 4))
        per_line=$((width * 3 / 4))
    else
        enc=hex
        per_line=$((width / 2))
        width=$((per_line * 2))
    fi
    per_page=$((lines * per_line))
    [ "$per_page" -gt 0 ] || { echo "bastion-job: no room for a page" >&2; return 64; }
    # Single keystrokes, no echo, and a read that gives up after 0.2 s (MIN 0, TIME 2).
    stty -icanon -echo -isig -ixon min 0 time 2 2>/dev/null \
        || { echo "bastion-job: serve needs a terminal" >&2; return 78; }
    begun=$(cat "$dir/started")
    screen=0
    idle=0
    pick_screen || return 76
    draw_screen
    while :; do
        key=$(dd bs=1 count=1 2>/dev/null)
        # Collected and removed (by another session's pager, or over SSH): nothing to show.
        [ -d "$dir" ] || return 76
        if [ -n "$key" ]; then idle=0; else idle=$((idle + 1)); fi
        case $key in
        n)
            if [ "$kind" = page ]; then
                if [ "$stream" = stdout ]; then
                    out_at=$((off + len))
                else
                    err_at=$((off + len))
                fi
                screen=$((screen + 1))
                pick_screen || return 76
                draw_screen
            fi
            ;;
        r) draw_screen ;;
        q)
            if [ "$kind" = end ]; then
                rm -rf "$dir"
                return 0
            fi
            ;;
        esac
        if [ "$limit" -gt 0 ] && [ ! -f "$dir/rc" ] && [ ! -f "$dir/timedout" ] \
            && [ $(($(date +%s) - begun)) -gt "$limit" ]; then
            : >"$dir/timedout"
            kill_job 1
        fi
        if [ "$kind" = wait ]; then
            pick_screen || return 76
            if [ "$kind" != wait ]; then
                screen=$((screen + 1))
                draw_screen
            fi
        fi
        # About 10 minutes (3000 reads of 0.2 s) without a key once the job is over.
        [ "$idle" -gt 3000 ] && [ -f "$dir/rc" ] && return 0
    done
}

# What to show next: sets kind (page, wait or end) and, for a page, stream, file, off, len
# and total. Fails when the job directory is gone.
pick_screen() {
    [ -d "$dir" ] || return 1
    finished=0
    [ -f "$dir/rc" ] && finished=1
    out_size=$(wc -c <"$dir/out") || return 1
    err_size=$(wc -c <"$dir/err") || return 1
    out_size=$((out_size + 0))
    err_size=$((err_size + 0))
    if [ "$out_size" -gt "$out_at" ]; then
        kind=page stream=stdout file="$dir/out" off=$out_at total=$out_size
    elif [ "$err_size" -gt "$err_at" ]; then
        kind=page stream=stderr file="$dir/err" off=$err_at total=$err_size
    elif [ "$finished" -eq 1 ]; then
        kind="end"
        return 0
    else
        kind="wait"
        return 0
    fi
    len=$((total - off))
    [ "$len" -gt "$per_page" ] && len=$per_page
    return 0
}

page_bytes() {
    tail -c +"$((off + 1))" "$file" | head -c "$len"
}

encode() {
    if [ "$enc" = b64 ]; then base64; else od -An -v -tx1; fi | tr -d ' \n' | fold -w "$width"
}

draw_screen() {
    printf '\033[H\033[2J\n'
    case $kind in
    page)
        fields="$screen $stream $off $len $total $enc"
        crc=$({ printf '%s\n' "$fields"; page_bytes; } | cksum)
        printf 'BASTION-PAGE %s %s\n' "$fields" "${crc%% *}"
        page_bytes | encode
        printf '\n'
        ;;
    wait)
        printf 'BASTION-WAIT %s %s %s\n' "$screen" "$out_at" "$err_at"
        ;;
    end)
        rc=$(cat "$dir/rc")
        timedout=0
        [ -f "$dir/timedout" ] && timedout=1
        fields="$screen $rc $timedout $out_at $err_at"
        crc=$(printf '%s\n' "$fields" | cksum)
        printf 'BASTION-END %s %s\n' "$fields" "${crc%% *}"
        ;;
    esac
    printf 'BASTION-FIN %s\n' "$screen"
}

case $action in
start)
    start_job "$3"
    exit $?
    ;;
serve)
    # For a mosh session: start (or find) the job, then show its output as pages on the
    # screen (see the pager above), stopping it TIMEOUT seconds (0: none) after it started,
    # on the node itself: the client may have no link at that moment.
    [ $# -eq 8 ] || { echo "bastion-job: serve needs 8 arguments" >&2; exit 64; }
    for number in "$3" "$4" "$5" "$6" "$7"; do
        case $number in ''|*[!0-9]*) echo "bastion-job: bad number '$number'" >&2; exit 64 ;; esac
    done
    start_job "$8"
    started=$?
    [ "$started" -eq 0 ] || [ "$started" -eq 75 ] || exit "$started"
    serve_pages "$3" "$4" "$5" "$6" "$7"
    exit $?
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
show)
    # `bastion jobs --show`: the output so far, stdout then stderr, whole; the job is then
    # marked seen (so `jobs --clean` may remove it); exit with its status, 77 while it runs.
    [ -d "$dir" ] || exit 76
    send_from "$dir/out" 0 || exit 1
    send_from "$dir/err" 0 >&2 || exit 1
    : >"$dir/seen"
    [ -f "$dir/rc" ] || exit 77
    exit "$(cat "$dir/rc")"
    ;;
result)
    [ -d "$dir" ] || exit 76
    [ -f "$dir/rc" ] || exit 77
    # The exit code, "timeout" when `run` stopped the job at its deadline, and "stopped" once
    # a kill saw the job's whole process group gone.
    words=$(cat "$dir/rc")
    [ -f "$dir/timedout" ] && words="$words timeout"
    [ -f "$dir/stopped" ] && words="$words stopped"
    echo "$words"
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
    # Finished jobs whose output was shown (`jobs --show`) are removed; the others are kept
    # (their output was never seen) unless $3 is "all".
    [ -d "$base" ] || exit 0
    for d in "$base"/*; do
        [ -f "$d/rc" ] || continue
        if [ -f "$d/seen" ] || [ "${3:-}" = all ]; then
            rm -rf "$d" && printf 'removed %s\n' "${d##*/}"
        else
            printf 'kept %s\n' "${d##*/}"
        fi
    done
    exit 0
    ;;
*)
    echo "bastion-job: unknown action '$action'" >&2
    exit 64
    ;;
esac
