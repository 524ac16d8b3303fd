# bastion sudo guard: run by sudo as `sh -c GUARD bastion-sudo WATCH MARK COMMAND`.
# POSIX sh plus setsid and ps; see docs/sudo.md.
#
# The login user cannot signal processes that run as root, so the group kill bastion sends on
# a timeout, Ctrl-C or SIGTERM (bastion/transport/remote_shell.py) would leave the command
# running. This guard runs as the sudo target user, starts COMMAND in a session and process
# group of its own, and stops that group itself, TERM, a grace period, then KILL, when:
#   - it receives TERM, INT or HUP (sudo relays the TERM of the group kill to it), or
#   - WATCH (the login shell that ran sudo, or sudo itself) is gone (the KILL of the group
#     kill ended it before sudo could relay anything).
# It exits only once no process of that group is left (zombies aside), so the SSH session ends
# (its output pipes close) only after the stop is verified: that is what lets bastion say
# "remote process group stopped". If the group outlives 60 s of KILLs, it says so on stderr.
#
# MARK (not secret) is set when the password is sent on stdin for `sudo -S`: stdin then starts
# with the password line, unless sudo read it, then MARK's line; the guard reads up to MARK so
# that COMMAND sees only what follows it, and the password never reaches COMMAND.
set -u
watch=$1
mark=$2
command=$3

if [ -n "$mark" ]; then
    IFS= read -r line || line=
    if [ "$line" != "$mark" ]; then
        IFS= read -r line || line=
    fi
    if [ "$line" != "$mark" ]; then
        echo "bastion: sudo: standard input did not start as bastion sent it" >&2
        exit 125
    fi
    unset line
fi

if ! command -v setsid >/dev/null 2>&1; then
    # No way to give the command a group of its own: run it as before, unguarded.
    exec sh -c "$command"
fi

me=$$
stopping=
trap 'stopping=1' TERM INT HUP

# An asynchronous list reads /dev/null unless told otherwise: hand it our stdin through fd 3.
exec 3<&0
setsid sh -c "$command" <&3 3<&- &
group=$!
exec 3<&- </dev/null

(
    # kill -0 fails for a process we may not signal (a --sudo-user guard watching sudo).
    while kill -0 "$watch" 2>/dev/null || ps -p "$watch" >/dev/null 2>&1; do
        sleep 0.2 2>/dev/null || sleep 1
    done
    kill -s TERM "$me" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watcher=$!

# Whether a process of the command's group is still running (a zombie is not).
alive() {
    states=$(ps -e -o pgid= -o stat= 2>/dev/null) || states=
    if [ -z "$states" ]; then
        kill -0 -- "-$group" 2>/dev/null
        return
    fi
    printf '%s\n' "$states" | {
        while read -r pgid stat; do
            if [ "$pgid" = "$group" ]; then
                case $stat in
                Z*) ;;
                *) exit 0 ;;
                esac
            fi
        done
        exit 1
    }
}

rc=0
while :; do
    wait "$group"
    rc=$?
    [ -n "$stopping" ] && break
    # wait ends early only for a trapped signal; otherwise the command is over.
    kill -0 "$group" 2>/dev/null || break
done

if [ -n "$stopping" ]; then
    kill -s TERM -- "-$group" 2>/dev/null
    tries=0
    while alive && [ "$tries" -lt 5 ]; do
        sleep 0.2 2>/dev/null || sleep 1
        tries=$((tries + 1))
    done
    kill -s KILL -- "-$group" 2>/dev/null
    # Reap the group's leader (the first wait was cut short by the signal).
    wait "$group" 2>/dev/null
    tries=0
    while alive; do
        if [ "$tries" -ge 60 ]; then
            echo "bastion: sudo: process group $group did not stop (still running)" >&2
            kill -s KILL "$watcher" 2>/dev/null
            exit 124
        fi
        kill -s KILL -- "-$group" 2>/dev/null
        sleep 1
        tries=$((tries + 1))
    done
    rc=143
fi
kill -s KILL "$watcher" 2>/dev/null
exit "$rc"
