#!/bin/sh
# Download a CNI manifest, check it is the one expected, add one env entry to its agent
# container (manifest-env logic below), optionally set flannel's net-conf.json Network, and
# only then move it into place (a half-edited file is never left where `kubectl apply` reads).
# Usage: cni-manifest.sh URL DEST MARKER CONTAINER ENV_NAME ENV_VALUE [FLANNEL_NETWORK]
set -eu
url=$1 dest=$2 marker=$3 container=$4 name=$5 value=$6 network=${7:-}
install -d -m 0700 "$(dirname "$dest")"
new="$dest.download"
curl -fsSL -o "$new" "$url"
grep -q "$marker" "$new" || { echo "cni-manifest.sh: $url has no '$marker'" >&2; exit 1; }
if [ -n "$network" ]; then
    grep -q '"Network": "10.244.0.0/16"' "$new" || { echo "cni-manifest.sh: no default Network in $url" >&2; exit 1; }
    sed -i "s#\"Network\": \"10.244.0.0/16\"#\"Network\": \"$network\"#" "$new"
    grep -qF "\"Network\": \"$network\"" "$new"
fi
awk -v c="$container" -v n="$name" -v v="$value" '
    state == 2 {
        match($0, /^ */)
        pad = substr($0, 1, RLENGTH)
        print pad "- name: " n
        if (v ~ /^fieldRef:/) {
            print pad "  valueFrom:"
            print pad "    fieldRef:"
            print pad "      fieldPath: " substr(v, 10)
        } else {
            print pad "  value: \"" v "\""
        }
        state = 3
    }
    { print }
    state == 0 && $0 ~ ("^[[:space:]]*- name: " c "[[:space:]]*$") { state = 1; next }
    state == 1 && $0 ~ /^[[:space:]]*env:[[:space:]]*$/ { state = 2 }
    END { if (state != 3) { print "cni-manifest.sh: no env list in container " c > "/dev/stderr"; exit 1 } }
' "$new" >"$new.env"
mv "$new.env" "$dest"
rm -f "$new"
echo "cni-manifest.sh: $dest ($container: $name=$value)"
