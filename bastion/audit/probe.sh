# bastion audit probe: read-only, POSIX sh, base-system tools only. Sent on stdin to
# `sudo -n sh -s` (or `sh -s` as the login user) in one round trip per host, after one line
# `nonce=...` that bastion draws at random for the run (the node cannot know it beforehand).
#
# Output (probe_output.py reads it; docs/audit.md "The probe's output"):
#   @@NONCE probe 2 ENCODING     first line; ENCODING is base64, or hex (od) without base64
#   @@NONCE section NAME         NAME is one of this script's own words, never host data
#   @@NONCE field NAME           the encoded lines that follow are this field's bytes
#   ENCODED...                   base64 or od hex lines only: no host string is printed raw
#   @@NONCE end COUNT            COUNT sections were printed
# A field holding several strings separates them with NUL (no path, name or shell value can
# hold one). Markers are printed by the shell's own printf, so the nonce is never in the argv
# or the environment of a process another user could look at.
# Nothing secret is printed: shadow entries are reduced to a class (HASH, LOCKED, EMPTY),
# private keys to a fingerprint and whether they are encrypted. Key files are read as their
# owner (runuser), as sshd does, so a symlink to /etc/shadow yields a read error.
LC_ALL=C
export LC_ALL
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
umask 077
case "${nonce:-}" in
"" | *[!0-9a-f]*) echo "bastion probe: no nonce" >&2 && exit 2 ;;
esac

if [ "$(printf 'ab\n' | base64 2>/dev/null)" = YWIK ]; then
    encoding=base64
    enc() { base64; }
else
    encoding=hex
    enc() { od -An -v -tx1; }
fi
sections=0
mark() { printf '@@%s %s\n' "$nonce" "$*"; }
section() { sections=$((sections + 1)) && mark "section $1"; }
field() { mark "field $1"; }
put() { field "$1" && printf '%s' "$2" | enc; }  # put NAME VALUE: one field from a shell value
warn() { put warn "$*"; }
mark "probe 2 $encoding"

is_root=no
[ "$(id -u)" = 0 ] && is_root=yes
me=$(id -un)
# shellcheck disable=SC2086 # split SSH_CONNECTION into its four fields
set -- ${SSH_CONNECTION:-0.0.0.0 0 0.0.0.0 0}
client_addr=$1 server_addr=$3 server_port=$4

# The config the running sshd reads: the -f of our own sshd ancestor (a lab node, a second
# instance), else the default. sshd rewrites its title, so read argv as one string.
# The uid of the topmost sshd ancestor (the listener) too: an sshd not running as root (a
# user-mode lab, a personal sshd) logs in only its own user, whatever else passwd lists.
sshd_config=/etc/ssh/sshd_config
sshd_uid=
pid=$$
while [ "$pid" -gt 1 ] 2>/dev/null; do
    comm=
    read -r comm <"/proc/$pid/comm" 2>/dev/null
    case "$comm" in
    sshd*)
        sshd_uid=$(awk '$1 == "Uid:" {print $2}' "/proc/$pid/status" 2>/dev/null)
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
        case "$cmd" in
        *" -f "*)
            found=${cmd#* -f }
            found=${found%% *}
            [ -n "$found" ] && [ -r "$found" ] && sshd_config=$found
            ;;
        esac
        ;;
    esac
    next=
    while read -r key value; do
        [ "$key" = PPid: ] && next=$value && break
    done <"/proc/$pid/status" 2>/dev/null
    pid=$next
    [ -n "$pid" ] || break
done
# Match blocks make settings differ per user: only then is sshd -T worth running per account.
has_match=no
if cat "$sshd_config" /etc/ssh/sshd_config.d/*.conf 2>/dev/null |
    grep -qi '^[[:space:]]*match[[:space:]]'; then
    has_match=yes
fi

os=
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091 # only the host's own os-release
    os=$(. /etc/os-release && echo "${ID:-unknown} ${VERSION_ID:-}")
fi
section facts
field facts
printf '%s\0' "hostname=$(hostname 2>/dev/null || cat /etc/hostname)" "os=$os" \
    "openssh=$(sshd -V 2>&1 | grep -m1 -o 'OpenSSH_[^ ,]*')" "now=$(date -u +%s)" \
    "root=$is_root" "login_user=$me" "client_addr=$client_addr" \
    "sshd_config=$sshd_config" "has_match=$has_match" "sshd_uid=$sshd_uid" | enc

spec() { echo "user=$1,host=$client_addr,addr=$client_addr,laddr=$server_addr,lport=$server_port"; }
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
sshd -T -f "$sshd_config" -C "$(spec root)" >"$work/sshd_t" 2>"$work/sshd_t.err"
section sshd_t
put account root
field output
enc <"$work/sshd_t"
[ -s "$work/sshd_t.err" ] && warn "sshd -T: $(head -c 300 "$work/sshd_t.err" | tr '\n' ' ')"

getent passwd >"$work/passwd"
# Key files only of accounts the serving sshd can log in (all of them when it runs as root).
if [ -n "$sshd_uid" ] && [ "$sshd_uid" != 0 ]; then
    awk -F: -v uid="$sshd_uid" '$3 == uid' "$work/passwd" >"$work/loginable"
else
    cp "$work/passwd" "$work/loginable"
fi
section passwd
field output
enc <"$work/passwd"
section group
field output
getent group | enc
section shadow
if [ "$is_root" = yes ]; then
    # The class of the password field only, and the account expiry day: never the hash.
    # LOCKED is sshd's own test on Linux (a leading "!"); "*" and the like are NOPASSWORD.
    field output
    getent shadow | awk -F: '{
        p = $2; c = substr(p, 1, 1)
        if (p == "") s = "EMPTY"; else if (c == "!") s = "LOCKED"
        else if (c == "$" || length(p) == 13) s = "HASH"; else s = "NOPASSWORD"
        print $1 ":" s ":" $8 }' | enc
else
    warn "not root: password state of accounts unknown"
fi

# authorized keys, per account, for every AuthorizedKeysFile pattern sshd uses for it.
# Few forks per account: one awk expands every pattern of every account, the shell only tests
# which candidates exist (a hundred hosts share two cores with their own sshd).
default_akf=$(awk '$1 == "authorizedkeysfile" {$1 = ""; print}' "$work/sshd_t")
[ -n "$default_akf" ] || default_akf=".ssh/authorized_keys .ssh/authorized_keys2"

expand_patterns() {  # expand_patterns PATTERNS < passwd lines: user|pattern|path per line
    awk -F: -v pats="$1" '$6 != "" {
        n = split(pats, p, " ")
        for (i = 1; i <= n; i++) {
            if (p[i] == "none") continue
            path = p[i]; gsub(/%%/, "\001", path); gsub(/%h/, $6, path)
            gsub(/%u/, $1, path); gsub(/%U/, $3, path); gsub(/\001/, "%", path)
            if (substr(path, 1, 1) != "/") path = $6 "/" path
            print $1 "|" p[i] "|" path
        }
    }'
}

# Candidates to a file first; with Match blocks, each account's own sshd -T is printed (and
# its patterns used) before any key section starts, so sections never interleave. Loops read
# files, never pipes: a piped loop would run in a subshell and miss the section count.
if [ "$has_match" = no ]; then
    expand_patterns "$default_akf" <"$work/loginable" >"$work/candidates"
else
    : >"$work/candidates"
    while IFS= read -r entry; do
        user=${entry%%:*}
        if [ "$user" = root ]; then
            cp "$work/sshd_t" "$work/sshd_u"
        else
            sshd -T -f "$sshd_config" -C "$(spec "$user")" >"$work/sshd_u" 2>/dev/null
            section sshd_t
            put account "$user"
            field output
            enc <"$work/sshd_u"
        fi
        patterns=$(awk '$1 == "authorizedkeysfile" {$1 = ""; print}' "$work/sshd_u")
        printf '%s\n' "$entry" | expand_patterns "${patterns:-$default_akf}" >>"$work/candidates"
    done <"$work/loginable"
fi

# At most 1 MiB; O_NONBLOCK, so a file swapped for a FIFO after the -f test reads as empty
# instead of stalling the probe.
read_file() { dd if="$1" bs=1048576 count=1 iflag=nonblock,fullblock status=none 2>/dev/null; }
read_as() {  # read_as USER FILE: as sshd would see it (as USER), or fail
    if [ "$is_root" = yes ]; then
        runuser -u "$1" -- dd if="$2" bs=1048576 count=1 iflag=nonblock,fullblock status=none \
            2>/dev/null
    elif [ "$1" = "$me" ]; then
        read_file "$2"
    else
        return 1
    fi
}

: >"$work/credentialed"
while IFS='|' read -r user pattern path; do
    # Globbing without word splitting: a matched name may hold spaces or newlines.
    saved_ifs=$IFS
    IFS=
    # shellcheck disable=SC2086 # the pattern may be a glob, as sshd allows
    for file in $path; do
        IFS=$saved_ifs
        [ -e "$file" ] || [ -L "$file" ] || continue
        section keys
        field meta
        { printf '%s\0%s\0%s\0' "$user" "$pattern" "$file"; stat -c '%F|%U|%G|%a|%Y|%s' -- "$file"; } |
            enc
        if [ -L "$file" ]; then
            field link
            readlink -- "$file" | enc
        fi
        # sshd's StrictModes walk: each directory from the file up to /, in one stat.
        set --
        dir=$file
        while [ "$dir" != / ]; do
            dir=${dir%/*}
            [ -n "$dir" ] || dir=/
            set -- "$@" "$dir"
        done
        field dirs
        stat --printf '%U|%a|%n\0' -- "$@" | enc
        # sshd wants a regular file; a device or a FIFO would never end.
        if [ ! -f "$file" ]; then
            put readerror "not a regular file"
        elif read_as "$user" "$file" >"$work/content"; then
            field content
            enc <"$work/content"
            printf '%s\n' "$user" >>"$work/credentialed"
        else
            put readerror "could not read as $user"
        fi
    done
    IFS=$saved_ifs
done <"$work/candidates"

section hostkeys
awk '$1 == "hostkey" {print $2}' "$work/sshd_t" >"$work/hostkeys"
while read -r key; do
    [ -r "$key" ] || { warn "host key $key unreadable"; continue; }
    field hostkey
    printf '%s\0%s\0%s\0' "$key" "$(stat -c '%U|%a' -- "$key")" "$(ssh-keygen -lf "$key" 2>/dev/null)" |
        enc
done <"$work/hostkeys"

section privatekeys
# find hands the names to sh as arguments (a name may hold a newline); each key is 4 fields.
field keys
for base in /root /home; do
    [ -d "$base" ] || continue
    find "$base" -maxdepth 4 -path '*/.ssh/*' -type f ! -name '*.pub' \
        ! -name 'authorized_keys*' ! -name 'known_hosts*' ! -name config -exec sh -c '
        for file do
            # Non-blocking, and ssh-keygen bounded: a name swapped for a FIFO cannot stall us.
            dd if="$file" bs=100 count=1 iflag=nonblock status=none 2>/dev/null |
                grep -q "PRIVATE KEY" || continue
            [ -f "$file" ] && [ ! -L "$file" ] || continue
            encrypted=yes
            # An empty passphrase works only on an unencrypted key; the public half is discarded.
            timeout 10 ssh-keygen -y -P "" -f "$file" >/dev/null 2>&1 && encrypted=no
            printf "%s\0%s\0%s\0%s\0" "$file" "$(stat -c %U -- "$file")" "$encrypted" \
                "$(timeout 10 ssh-keygen -lf "$file" 2>/dev/null)"
        done' sh {} + 2>/dev/null
done | enc

section sudo
if [ "$is_root" = yes ] && command -v sudo >/dev/null 2>&1; then
    # Only accounts holding a credential (a key file or a password): sudo -l costs a fork each.
    getent shadow | awk -F: '$2 == "" || $2 ~ /^\$/ {print $1}' >>"$work/credentialed"
    sort -u "$work/credentialed" >"$work/sudo_users"
    while read -r user; do
        [ "$user" = root ] && continue  # uid 0 needs no sudo
        # shellcheck disable=SC2024 # the file is ours; sudo only lists
        sudo -n -l -U "$user" >"$work/sudo_l" 2>/dev/null || continue
        grep -q "not allowed" "$work/sudo_l" && continue
        section sudouser
        put account "$user"
        field output
        enc <"$work/sudo_l"
    done <"$work/sudo_users"
elif ! command -v sudo >/dev/null 2>&1; then
    put absent yes
else
    warn "not root: sudo rules unknown"
fi

# The policy itself, as sudo parses it: once whole (/etc/sudoers, includes followed) and once per
# file of /etc/sudoers.d (that file alone), so a rule can be traced to its file. Read-only (no
# -o: JSON on stdout); aliases expanded, their definitions left out. Sudoers holds no secret.
if [ "$is_root" = yes ] && command -v cvtsudoers >/dev/null 2>&1; then
    for file in /etc/sudoers /etc/sudoers.d/*; do
        [ -f "$file" ] || continue
        case "${file##*/}" in *~ | *.*) continue ;; esac  # files sudo's @includedir skips
        if cvtsudoers -e -s aliases -f json -- "$file" >"$work/sudoers.json" 2>"$work/cvt.err"; then
            section sudoers
            put file "$file"
            field output
            enc <"$work/sudoers.json"
        else
            warn "cvtsudoers $file failed: $(head -c 200 "$work/cvt.err" | tr '\n' ' ')"
        fi
    done
elif [ "$is_root" = yes ] && command -v sudo >/dev/null 2>&1; then
    warn "cvtsudoers absent: sudoers rules not traced to their file"
fi

section kube
for f in /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf; do
    [ -e "$f" ] || continue
    field kubeconfig
    printf '%s\0%s\0' "$f" "$(stat -c '%U|%G|%a' -- "$f")" | enc
done

# Login evidence: at most 5,000 lines of at most 2,000 bytes each.
section logins
if command -v journalctl >/dev/null 2>&1 && [ -n "$(journalctl -q -n 1 2>/dev/null)" ]; then
    put source journal
    field output
    journalctl -q --no-pager -o short-unix --since -90d _COMM=sshd _COMM=sshd-session 2>/dev/null |
        grep 'Accepted ' | tail -n 5000 | cut -b -2000 | enc
elif ls /var/log/auth.log /var/log/secure >/dev/null 2>&1; then
    put source authlog
    field output
    cat /var/log/auth.log /var/log/secure 2>/dev/null | grep 'Accepted ' | tail -n 5000 |
        cut -b -2000 | enc
else
    put source none
fi
mark "end $sections"
