# bastion facts probe: read-only, POSIX sh, no root needed. One "key<TAB>value" line per fact;
# lists (disks, addresses) repeat their key. Every value is data for bastion, never a command.
LC_ALL=C
export LC_ALL
fact() { printf '%s\t%s\n' "$1" "$2"; }
osr() { sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | head -n 1; }
fact os_name "$(osr PRETTY_NAME)"
fact os_id "$(osr ID)"
fact os_version "$(osr VERSION_ID)"
fact hostname "$(uname -n)"
fact kernel "$(uname -r)"
fact arch "$(uname -m)"
fact cpus "$(getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c '^processor' /proc/cpuinfo)"
fact memory_kb "$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo 2>/dev/null)"
fact uptime_s "$(cut -d ' ' -f 1 /proc/uptime 2>/dev/null)"
df -P -k 2>/dev/null | tail -n +2 | while read -r _fs size used avail _pct mount; do
    case $_fs in tmpfs|devtmpfs|overlay|squashfs|udev|none|shm) continue ;; esac
    fact disk "$size $used $avail $mount"
done
if command -v ip >/dev/null 2>&1; then
    ip -o addr show 2>/dev/null | while read -r _index name family address _rest; do
        fact address "$name $family $address"
    done
else
    for address in $(hostname -I 2>/dev/null); do fact address "- - $address"; done
fi
for tool in containerd crio docker; do
    if command -v "$tool" >/dev/null 2>&1; then
        fact runtime "$("$tool" --version 2>/dev/null | head -n 1)"
    fi
done
if command -v kubelet >/dev/null 2>&1; then
    fact kubelet "$(kubelet --version 2>/dev/null | head -n 1)"
fi
fact end facts
