# bastion audit probe: read-only, POSIX sh, base-system tools only. Sent on stdin to
# `sudo -n sh -s` (or `sh -s` as the login user) in one round trip per host.
#
# Output: marker lines start with "@@", data lines start with "|" (so no file content can
# forge a marker). Nothing secret is printed: shadow entries are reduced to a class
# (HASH, LOCKED, EMPTY), private keys to a fingerprint and whether they are encrypted.
# Key files are read as their owner (runuser), as sshd does, so a symlink to /etc/shadow
# yields a read error, never its content.
LC_ALL=C
export LC_ALL
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
umask 077

data() { awk '{print "|" $0}'; }  # awk also ends an unterminated last line
warn() { echo "@@warn $*"; }
is_root=no
[ "$(id -u)" = 0 ] && is_root=yes
me=$(id -un)

echo "@@section facts"
echo "@@fact hostname $(hostname 2>/dev/null || cat /etc/hostname)"
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091 # only the host's own os-release
    os=$(. /etc/os-release && echo "${ID:-unknown} ${VERSION_ID:-}")
    echo "@@fact os $os"
fi
echo "@@fact openssh $(sshd -V 2>&1 | grep -m1 -o 'OpenSSH_[^ ,]*')"
echo "@@fact now $(date -u +%s)"
echo "@@fact root $is_root"
echo "@@fact login_user $me"
# shellcheck disable=SC2086 # split SSH_CONNECTION into its four fields
set -- ${SSH_CONNECTION:-0.0.0.0 0 0.0.0.0 0}
client_addr=$1 server_addr=$3 server_port=$4
echo "@@fact client_addr $client_addr"

# The config the running sshd reads: the -f of our own sshd ancestor (a lab node, a second
# instance), else the default. sshd rewrites its title, so read argv as one string.
sshd_config=/etc/ssh/sshd_config
pid=$$
while [ "$pid" -gt 1 ] 2>/dev/null; do
    comm=
    read -r comm <"/proc/$pid/comm" 2>/dev/null
    case "$comm" in
    sshd*)
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
echo "@@fact sshd_config $sshd_config"

spec() { echo "user=$1,host=$client_addr,addr=$client_addr,laddr=$server_addr,lport=$server_port"; }
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
sshd -T -f "$sshd_config" -C "$(spec root)" >"$work/sshd_t" 2>"$work/sshd_t.err"
echo "@@section sshd_t root"
data <"$work/sshd_t"
[ -s "$work/sshd_t.err" ] && warn "sshd -T: $(head -c 300 "$work/sshd_t.err" | tr '\n' ' ')"
# Match blocks make settings differ per user: only then is sshd -T worth running per account.
has_match=no
if cat "$sshd_config" /etc/ssh/sshd_config.d/*.conf 2>/dev/null |
    grep -qi '^[[:space:]]*match[[:space:]]'; then
    has_match=yes
fi
echo "@@fact has_match $has_match"

echo "@@section passwd"
getent passwd | data
echo "@@section group"
getent group | data
echo "@@section shadow"
if [ "$is_root" = yes ]; then
    # The class of the password field only, and the account expiry day: never the hash.
    # LOCKED is sshd's own test on Linux (a leading "!"); "*" and the like are NOPASSWORD.
    getent shadow | awk -F: '{
        p = $2; c = substr(p, 1, 1)
        if (p == "") s = "EMPTY"; else if (c == "!") s = "LOCKED"
        else if (c == "$" || length(p) == 13) s = "HASH"; else s = "NOPASSWORD"
        print $1 ":" s ":" $8 }' | data
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
# its patterns used) before any key section starts, so sections never interleave.
if [ "$has_match" = no ]; then
    getent passwd | expand_patterns "$default_akf" >"$work/candidates"
else
    getent passwd | while IFS= read -r entry; do
        user=${entry%%:*}
        if [ "$user" = root ]; then
            cp "$work/sshd_t" "$work/sshd_u"
        else
            sshd -T -f "$sshd_config" -C "$(spec "$user")" >"$work/sshd_u" 2>/dev/null
            echo "@@section sshd_t $user"
            data <"$work/sshd_u"
        fi
        patterns=$(awk '$1 == "authorizedkeysfile" {$1 = ""; print}' "$work/sshd_u")
        echo "$entry" | expand_patterns "${patterns:-$default_akf}" >>"$work/candidates"
    done
fi

read_as() {  # read_as USER FILE: at most 1 MiB, as sshd would see it (as USER), or fail
    if [ "$is_root" = yes ]; then
        runuser -u "$1" -- head -c 1048576 -- "$2" 2>/dev/null
    elif [ "$1" = "$me" ]; then
        head -c 1048576 -- "$2" 2>/dev/null
    else
        return 1
    fi
}

while IFS='|' read -r user pattern path; do
    # shellcheck disable=SC2086 # the pattern may be a glob, as sshd allows
    for file in $path; do
        [ -e "$file" ] || [ -L "$file" ] || continue
        echo "@@section keys $user $file"
        echo "@@pattern $pattern"
        echo "@@stat $(stat -c '%F|%U|%G|%a|%Y|%s' -- "$file")"
        [ -L "$file" ] && echo "@@link $(readlink -- "$file")"
        # sshd's StrictModes walk: each directory from the file up to /, in one stat.
        set --
        dir=$file
        while [ "$dir" != / ]; do
            dir=${dir%/*}
            [ -n "$dir" ] || dir=/
            set -- "$@" "$dir"
        done
        stat -c '@@dir %U|%a|%n' -- "$@"
        # sshd wants a regular file; a device or a FIFO would never end.
        if [ ! -f "$file" ]; then
            echo "@@readerror not a regular file"
        elif content=$(read_as "$user" "$file"); then
            printf '%s\n' "$content" | data
            echo "$user" >>"$work/credentialed"
        else
            echo "@@readerror could not read as $user"
        fi
    done
done <"$work/candidates"

echo "@@section hostkeys"
awk '$1 == "hostkey" {print $2}' "$work/sshd_t" |
    while read -r key; do
        [ -r "$key" ] || { warn "host key $key unreadable"; continue; }
        echo "@@hostkey $key|$(stat -c '%U|%a' -- "$key")|$(ssh-keygen -lf "$key" 2>/dev/null)"
    done

echo "@@section privatekeys"
for base in /root /home; do
    [ -d "$base" ] || continue
    find "$base" -maxdepth 4 -path '*/.ssh/*' -type f ! -name '*.pub' \
        ! -name 'authorized_keys*' ! -name 'known_hosts*' ! -name config 2>/dev/null
done | while read -r file; do
    head -c 100 -- "$file" 2>/dev/null | grep -q 'PRIVATE KEY' || continue
    owner=$(stat -c %U -- "$file")
    encrypted=yes
    # An empty passphrase works only on an unencrypted key; the public half goes to /dev/null.
    ssh-keygen -y -P '' -f "$file" >/dev/null 2>&1 && encrypted=no
    echo "@@privkey $file|$owner|$encrypted|$(ssh-keygen -lf "$file" 2>/dev/null)"
done

echo "@@section sudo"
if [ "$is_root" = yes ] && command -v sudo >/dev/null 2>&1; then
    # Only accounts holding a credential (a key file or a password): sudo -l costs a fork each.
    getent shadow | awk -F: '$2 == "" || $2 ~ /^\$/ {print $1}' >>"$work/credentialed"
    sort -u "$work/credentialed" 2>/dev/null | while read -r user; do
        [ "$user" = root ] && continue  # uid 0 needs no sudo
        out=$(sudo -n -l -U "$user" 2>/dev/null) || continue
        case "$out" in *"not allowed"*) continue ;; esac
        echo "@@section sudouser $user"
        printf '%s\n' "$out" | data
    done
elif ! command -v sudo >/dev/null 2>&1; then
    echo "@@fact sudo absent"
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
            echo "@@section sudoers $file"
            data <"$work/sudoers.json"
        else
            warn "cvtsudoers $file failed: $(head -c 200 "$work/cvt.err" | tr '\n' ' ')"
        fi
    done
elif [ "$is_root" = yes ] && command -v sudo >/dev/null 2>&1; then
    warn "cvtsudoers absent: sudoers rules not traced to their file"
fi

echo "@@section kube"
for f in /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf; do
    [ -e "$f" ] && echo "@@kubeconfig $f|$(stat -c '%U|%G|%a' -- "$f")"
done

echo "@@section logins"
if command -v journalctl >/dev/null 2>&1 && [ -n "$(journalctl -q -n 1 2>/dev/null)" ]; then
    echo "@@source journal"
    journalctl -q --no-pager -o short-unix --since -90d _COMM=sshd _COMM=sshd-session 2>/dev/null |
        grep 'Accepted ' | tail -n 5000 | data
elif ls /var/log/auth.log /var/log/secure >/dev/null 2>&1; then
    echo "@@source authlog"
    cat /var/log/auth.log /var/log/secure 2>/dev/null | grep 'Accepted ' | tail -n 5000 | data
else
    echo "@@source none"
fi
echo "@@end"
