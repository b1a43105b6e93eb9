#!/usr/bin/env bash
# tests/package/check.sh: the server install, end to end (CTest: package_install).
#   check.sh SRC BUILD SANITIZE
# 1. `cmake --install BUILD --prefix SCRATCH`: binaries, track.h, libtrack.so
#    and .a, track.pc, both units, the example config, man pages, completion.
# 2. The man pages and the completion name every command and long option
#    that `track help` and `trackd --help` show; man renders them warning-free.
# 3. A C program built with `cc prog.c $(pkg-config --cflags --libs track)`
#    (and one linked with the installed libtrack.a) logs into a real trackd;
#    the built track CLI reads back what it logged.
# 4. scripts/package builds the .deb; dpkg-deb -c/-x/-e: files, owners and
#    modes, ExecStart= of the units, Depends, maintainer scripts (which
#    enable and start nothing). Where root may unshare a mount namespace,
#    postinst/prerm/postrm run for real against overlays of /etc, /usr and
#    /var (the host's files are untouched): the user is made, idempotently.
# 5. systemd-analyze verify on both units; security --offline of
#    trackd.service <= 2.0. With strace, trackd's own system calls under a
#    workload all lie inside the unit's SystemCallFilter=.
# Every wait is bounded; exits non-zero with the failed check's name.
set -euo pipefail
src="$1" build="$2" sanitize="${3:-OFF}"
scratch="$(mktemp -d /tmp/track-package.XXXXXX)"
tpid=""
cleanup() {
    [ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# ---- 1. cmake --install into a scratch prefix
prefix="$scratch/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir="$(cd "$prefix" && { ls -d lib/*/pkgconfig lib/pkgconfig 2>/dev/null || true; } | head -1)"
libdir="${libdir%/pkgconfig}"
[ -n "$libdir" ] || fail "install: no track.pc under $prefix/lib"
want_mode() { # FILE MODE
    [ -e "$prefix/$1" ] || fail "install: $1 missing"
    local m
    m="$(stat -c %a "$prefix/$1")"
    [ "$m" = "$2" ] || fail "install: $1 mode $m, not $2"
}
want_mode bin/track 755
want_mode bin/trackd 755
want_mode include/track.h 644
want_mode "$libdir/libtrack.a" 644
want_mode "$libdir/pkgconfig/track.pc" 644
want_mode lib/systemd/system/trackd.service 644
want_mode lib/systemd/user/trackd.service 644
want_mode share/track/trackd.conf 644
want_mode share/man/man1/track.1 644
want_mode share/man/man8/trackd.8 644
want_mode share/bash-completion/completions/track 644
[ -L "$prefix/$libdir/libtrack.so" ] || fail "install: libtrack.so is not a symlink"
[ -e "$prefix/$libdir/libtrack.so.0" ] || fail "install: libtrack.so.0 missing"
for o in wire.c.o paths.c.o track_limits.c.o track.pb-c.c.o conn.c.o; do
    ar t "$prefix/$libdir/libtrack.a" | grep -qx "$o" || fail "install: libtrack.a lacks $o"
done
ok "cmake --install: every file, with its mode"

# ---- 2. man pages and completion against the CLI's own help
track="$build/bin/track" trackd="$build/bin/trackd"
man1="$src/docs/man/track.1" man8="$src/docs/man/trackd.8"
comp="$src/packaging/track.bash-completion"
# man_item FILE HEADING OPT: OPT has an item (.B/.BI/.BR line) in HEADING's section
man_item() {
    awk -v h="$2" -v o="$3" '$0 == h {in_s = 1; next}
        in_s && /^\.S[HS] / {in_s = 0}
        in_s && /^\.B[IR]? / {
            l = $0; gsub(/\\/, "", l); sub(/^\.B[IR]? "?/, "", l)
            r = substr(l, length(o) + 1)
            if (index(l, o) == 1 && (r == "" || r ~ /^[ "]/)) found = 1
        }
        END {exit !found}' "$1"
}
mapfile -t cmds < <("$track" --help | sed -n '/^commands:/,/^$/p' |
    sed -n 's/^  \([a-z-]*\( [a-z-]\{1,\}\)\{0,2\}\)  .*/\1/p')
[ "${#cmds[@]}" -ge 10 ] || fail "man: could not read the command list of track --help"
for c in "${cmds[@]}"; do
    grep -qF ".SS \"$c\"" "$man1" || fail "track.1: no section for command '$c'"
    for w in $c; do grep -qw -- "$w" "$comp" || fail "completion: no '$w' (of '$c')"; done
    # every long option `track help COMMAND` lists (its table and its getopt)
    # shellcheck disable=SC2086
    opts="$("$track" help $c | sed -n '/^options:/,/^$/p' | grep -o -- '^  --[a-z-]*' || true)"
    for o in $opts; do
        man_item "$man1" ".SS \"$c\"" "$o" || fail "track.1: '$c' has no item for $o"
        grep -q -- "$o\\b" "$comp" || fail "completion: '$c' option $o missing"
        awk -v c="$c" -v o="$o" 'index($0, "\"" c "\")") || index($0, " " c ")") ||
            index($0, c " |") || index($0, "| " c " ") || index($0, "| " c ")") {f=1}
            f && index($0, o) {found=1} f && /;;/ {f=0} END {exit !found}' "$comp" ||
            fail "completion: option $o not offered for '$c'"
    done
done
for o in $("$trackd" --help | grep -o -- '^  --[a-z-]*' | tr -d ' ') --version --help; do
    man_item "$man8" ".SH OPTIONS" "$o" || fail "trackd.8: no item for option $o"
done
if command -v man >/dev/null; then
    for m in "$man1" "$man8"; do
        w="$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)"
        [ -z "$w" ] || fail "man $m: $w"
    done
fi
bash -c "source '$comp'; COMP_WORDS=(track run st); COMP_CWORD=2; _track
          [[ \${COMPREPLY[*]} == start ]]" ||
    fail "completion: 'track run st' does not complete to start"
ok "man pages and completion cover ${#cmds[@]} commands and their options"

# ---- 3. pkg-config against the installed tree, run against a real trackd
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
san=""
[ "$sanitize" = ON ] && san="-fsanitize=address,undefined"
# shellcheck disable=SC2046
cc $san -o "$scratch/prog" "$src/tests/package/prog.c" $(pkg-config --cflags --libs track) ||
    fail "pkg-config: cc prog.c \$(pkg-config --cflags --libs track) does not build"
# shellcheck disable=SC2046
cc $san -o "$scratch/prog-static" "$src/tests/package/prog.c" $(pkg-config --cflags track) \
    "$prefix/$libdir/libtrack.a" $(pkg-config --static --libs track | sed 's/-ltrack//') ||
    fail "pkg-config: prog.c does not link with the installed libtrack.a"
mkdir -p "$scratch/run" "$scratch/data" "$scratch/state"
chmod 700 "$scratch/run"
export TRACK_SERVER="ipc://$scratch/run/trackd.sock" TRACK_NO_AUTOSTART=1
export XDG_STATE_HOME="$scratch/state" XDG_RUNTIME_DIR="$scratch/run"
"$trackd" --data-dir "$scratch/data" --listen "$TRACK_SERVER" 2>"$scratch/trackd.log" &
tpid=$!
for _ in $(seq 100); do "$track" status >/dev/null 2>&1 && break; sleep 0.05; done
"$track" status >/dev/null || fail "trackd did not answer within 5 s: $(cat "$scratch/trackd.log")"
for p in prog prog-static; do
    id="$(LD_LIBRARY_PATH="$prefix/$libdir" "$scratch/$p")" || fail "$p: exit $?"
    # ldd's output whole first: `ldd | grep -q` under pipefail fails at random
    # (grep stops reading, ldd dies of SIGPIPE)
    linked="$(LD_LIBRARY_PATH="$prefix/$libdir" ldd "$scratch/$p")"
    [ "$p" = prog-static ] || [[ $linked == *"$prefix/$libdir/libtrack.so"* ]] ||
        fail "$p: not linked with the installed libtrack.so"
    show="$("$track" run show "$id" --json)"
    grep -q '"built": *"pkg-config"' <<<"$show" || fail "$p: param not stored: $show"
    [ "$("$track" metric history "$id" loss --csv | tail -n +2 | wc -l)" = 3 ] ||
        fail "$p: not 3 points of loss"
done
kill "$tpid"; wait "$tpid" || fail "trackd exit status $?"; tpid=""
ok "pkg-config: prog.c built (shared and static) and logged a run into a real trackd"

# ---- 4. the .deb
TRACK_PACKAGE_BUILD="$build/package-build" "$src/scripts/package" "$scratch/deb" \
    >/dev/null 2>"$scratch/package.log" ||
    fail "scripts/package: $(tail -20 "$scratch/package.log")"
deb="$(ls "$scratch"/deb/track_*_*.deb)"
listing="$(dpkg-deb -c "$deb")"
deb_has() { # MODE PATH
    grep -qE "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./$2( |$)" <<<"$listing" ||
        fail "deb: ./$2 with $1 root/root not in: $(grep -F "$2" <<<"$listing" || echo nothing)"
}
multi="lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)"
deb_has -rwxr-xr-x usr/bin/track
deb_has -rwxr-xr-x usr/bin/trackd
deb_has -rw-r--r-- usr/include/track.h
deb_has -rw-r--r-- "usr/$multi/libtrack.so.0.1.0"
deb_has lrwxrwxrwx "usr/$multi/libtrack.so"
deb_has -rw-r--r-- "usr/$multi/libtrack.a"
deb_has -rw-r--r-- "usr/$multi/pkgconfig/track.pc"
deb_has -rw-r--r-- usr/lib/systemd/system/trackd.service
deb_has -rw-r--r-- usr/lib/systemd/user/trackd.service
deb_has -rw-r--r-- usr/share/track/trackd.conf
deb_has -rw-r--r-- usr/share/man/man1/track.1
deb_has -rw-r--r-- usr/share/man/man8/trackd.8
deb_has -rw-r--r-- usr/share/bash-completion/completions/track
! grep -qE ' \./(etc|var|run)/' <<<"$listing" || fail "deb: ships files in /etc, /var or /run"
root="$scratch/root" ctl="$scratch/control"
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$ctl"
grep -q '^ExecStart=/usr/bin/trackd .*--data-dir /var/lib/trackd' \
    "$root/usr/lib/systemd/system/trackd.service" ||
    fail "deb: system unit's ExecStart is not /usr/bin/trackd"
grep -q '^ExecStart=/usr/bin/trackd ' "$root/usr/lib/systemd/user/trackd.service" ||
    fail "deb: user unit's ExecStart is not /usr/bin/trackd"
"$root/usr/bin/trackd" --version | grep -q '^trackd ' || fail "deb: its trackd does not run"
cmp -s "$root/usr/share/man/man1/track.1" "$man1" || fail "deb: track.1 differs from docs/man"
for s in postinst prerm postrm; do
    [ "$(stat -c %a "$ctl/$s")" = 755 ] || fail "deb: $s is not 0755"
    sh -n "$ctl/$s" || fail "deb: $s does not parse"
done
! grep -v '^ *#' "$ctl/postinst" |
    grep -qE 'systemctl +(--[a-z]+ +)*(enable|start)|deb-systemd-helper +enable' ||
    fail "deb: postinst enables or starts the service"
grep -q 'adduser --system' "$ctl/postinst" || fail "deb: postinst makes no system user"
deps="$(sed -n 's/^Depends: //p' "$ctl/control")"
for d in libsqlite3-0 libnanomsg5 libprotobuf-c1 libsodium23 libjansson4 adduser; do
    grep -qw -- "$d" <<<"$deps" || fail "deb: Depends lacks $d"
    apt-cache show "$d" >/dev/null 2>&1 || dpkg-query -W "$d" >/dev/null 2>&1 ||
        fail "deb: dependency $d is no package of this system"
done
ok "deb: $(grep -c . <<<"$listing") entries, modes, units, man pages, Depends, maintainer scripts"

# the maintainer scripts for real, in a private mount namespace whose /etc,
# /usr and /var are overlays (writes land in the scratch dir)
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
    ns="$scratch/ns"
    mkdir -p "$ns"
    cat >"$ns/run.sh" <<NS
set -eu
for d in etc usr var; do
    mkdir -p "$ns/\$d.up" "$ns/\$d.work"
    mount -t overlay overlay -o "lowerdir=/\$d,upperdir=$ns/\$d.up,workdir=$ns/\$d.work" "/\$d"
done
cp -a "$root/usr/." /usr/
getent passwd trackd >/dev/null && { echo "a user trackd exists already"; exit 3; }
sh "$ctl/postinst" configure ""
u="\$(getent passwd trackd)"
case "\$u" in *:/usr/sbin/nologin) ;; *) echo "user: \$u"; exit 1 ;; esac
[ "\$(id -u trackd)" -lt 1000 ] || { echo "trackd is not a system uid"; exit 1; }
[ "\$(id -gn trackd)" = trackd ] || { echo "trackd's group is not trackd"; exit 1; }
[ "\$(stat -c %a /etc/trackd.conf)" = 644 ] || { echo "/etc/trackd.conf not 0644"; exit 1; }
echo "# edited" >>/etc/trackd.conf
sh "$ctl/postinst" configure 0.1.0            # an upgrade: idempotent
[ "\$(getent passwd trackd | cut -d: -f3)" = "\$(echo "\$u" | cut -d: -f3)" ] || exit 1
grep -q '^# edited' /etc/trackd.conf || { echo "postinst overwrote the admin's config"; exit 1; }
mkdir -p /var/lib/trackd && echo db >/var/lib/trackd/track.db
sh "$ctl/prerm" remove
sh "$ctl/postrm" remove
[ -e /var/lib/trackd/track.db ] && [ -e /etc/trackd.conf ] ||
    { echo "remove deleted data"; exit 1; }
sh "$ctl/postrm" purge
[ ! -e /var/lib/trackd ] && [ ! -e /etc/trackd.conf ] || { echo "purge kept data"; exit 1; }
getent passwd trackd >/dev/null || { echo "purge removed the user"; exit 1; }
NS
    host_user="$(getent passwd trackd || true)"
    unshare --mount --propagation private sh "$ns/run.sh" ||
        fail "deb: maintainer scripts (see above)"
    [ "$(getent passwd trackd || true)" = "$host_user" ] || fail "deb: the host's users changed"
    ok "deb: postinst made the system user trackd (twice, idempotent), kept an edited" \
        "/etc/trackd.conf; remove kept the data, purge removed /var/lib/trackd and the config"
else
    echo "note: not root or no mount namespaces: maintainer scripts only parsed and read"
fi

# ---- 5. systemd-analyze
if command -v systemd-analyze >/dev/null; then
    units="$scratch/units"
    mkdir -p "$units" "$scratch/xrt"
    chmod 700 "$scratch/xrt"
    # the units as the .deb ships them, ExecStart= pointed at its extracted trackd
    sed "s|/usr/bin/trackd|$root/usr/bin/trackd|" "$root/usr/lib/systemd/system/trackd.service" \
        >"$units/trackd.service"
    sed "s|/usr/bin/trackd|$root/usr/bin/trackd|" "$root/usr/lib/systemd/user/trackd.service" \
        >"$units/trackd-user.service"
    MANPATH="$root/usr/share/man" systemd-analyze verify "$units/trackd.service" ||
        fail "systemd-analyze verify trackd.service"
    XDG_RUNTIME_DIR="$scratch/xrt" MANPATH="$root/usr/share/man" \
        systemd-analyze verify --user "$units/trackd-user.service" ||
        fail "systemd-analyze verify --user trackd-user.service"
    sec="$(systemd-analyze security --offline=yes --threshold=20 "$units/trackd.service" 2>&1)" ||
        fail "systemd-analyze security: $(tail -1 <<<"$sec")"
    level="$(sed -n 's/.*Overall exposure level for trackd.service: \([0-9.]*\).*/\1/p' <<<"$sec")"
    [ -n "$level" ] || fail "systemd-analyze security: no exposure level in: $sec"
    awk -v l="$level" 'BEGIN {exit !(l <= 2.0)}' || fail "trackd.service exposure $level > 2.0"
    ok "systemd-analyze: both units verify; trackd.service exposure $level (<= 2.0)"

    # trackd's system calls under a workload, against the unit's filter
    if command -v strace >/dev/null; then
        allow="$(grep '^SystemCallFilter=[^~]' "$units/trackd.service" | cut -d= -f2)"
        deny="$(sed -n 's/^SystemCallFilter=~//p' "$units/trackd.service")"
        # systemd-analyze lists a group's members with nested groups expanded
        # below it; expand the nested ones too
        expand() {
            local seen=" " todo=("$@") g out=()
            while [ ${#todo[@]} -gt 0 ]; do
                g="${todo[0]}" todo=("${todo[@]:1}")
                case "$seen" in *" $g "*) continue ;; esac
                seen+="$g "
                case "$g" in @*) ;; *) out+=("$g") && continue ;; esac
                while read -r s; do
                    case "$s" in @*) todo+=("$s") ;; '' | \#*) ;; *) out+=("$s") ;; esac
                done < <(systemd-analyze syscall-filter "$g" | tail -n +2 ||
                    fail "systemd-analyze syscall-filter $g")
            done
            printf '%s\n' "${out[@]}" | sort -u
        }
        # shellcheck disable=SC2086
        comm -23 <(expand $allow) <(expand $deny) >"$scratch/allowed"
        d="$scratch/sc" && mkdir -p "$d/data" "$d/run" && chmod 700 "$d/run"
        rt=("$root/usr/bin/trackd" --data-dir "$d/data" --listen "ipc://$d/run/trackd.sock"
            --listen "tcp://127.0.0.1:$((20000 + $$ % 20000))" --socket-mode 0660)
        # the tcp listener is sealed: a server key, a client key, its user
        "${rt[0]}" --data-dir "$d/data" --print-public-key >"$d/server.pub" ||
            fail "trackd --print-public-key"
        TRACK_KEY="$scratch/client.key" "$track" keygen >"$scratch/client.pub" 2>/dev/null ||
            fail "track keygen"
        "${rt[0]}" --data-dir "$d/data" --add-user pkg --role admin \
            --key "$(cat "$scratch/client.pub")" >/dev/null || fail "trackd --add-user"
        as=()
        if [ "$(id -u)" = 0 ]; then
            # as trackd would run: no root (SQLite chowns its files as root)
            chown -R nobody:nogroup "$d" && chmod 755 "$scratch"
            as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs)
        fi
        strace -f -qq -o "$d/trace" "${as[@]}" "${rt[@]}" 2>"$d/log" &
        tpid=$!
        export TRACK_SERVER="ipc://$d/run/trackd.sock"
        for _ in $(seq 100); do "$track" status >/dev/null 2>&1 && break; sleep 0.05; done
        "$track" status >/dev/null || fail "trackd under strace did not answer: $(tail -3 "$d/log")"
        "$track" experiment create sc >/dev/null
        run="$("$track" run start --experiment sc --param a=1)"
        "$track" log-metric --run "$run" loss 0.5 --step 1
        printf 'loss 0.4 2\nacc 0.9 2\n' | "$track" log-metric --run "$run" --stdin
        "$track" run end --run "$run"
        "$track" runs --filter 'metrics.loss < 1' >/dev/null
        TRACK_KEY="$scratch/client.key" TRACK_SERVER_KEY="$(cat "$d/server.pub")" \
            "$track" --server "${rt[6]}" status >/dev/null || fail "status over sealed tcp"
        "$track" export --experiment sc --format json --history >/dev/null
        "$track" backup "$d/data/backups/b.db" >/dev/null
        # where the CLI has them: artifacts (blob files), delete and gc
        if "$track" help artifact put >/dev/null 2>&1; then
            head -c 3000000 /dev/urandom >"$d/blob.bin"
            "$track" artifact put --run "$run" "$d/blob.bin" --as m/blob.bin >/dev/null
            "$track" artifact get "$run" m/blob.bin -o "$d/out.bin" >/dev/null
            cmp -s "$d/blob.bin" "$d/out.bin" || fail "artifact under strace: not the same bytes"
            "$track" artifact verify "$run" >/dev/null
            "$track" run delete "$run" >/dev/null
            "$track" gc --grace 0 >/dev/null
        fi
        pid="$(grep -m1 -E '^[0-9]+ +execve\("'"$root"'/usr/bin/trackd"' "$d/trace" |
            cut -d' ' -f1)"
        kill -HUP "$pid"
        for _ in $(seq 100); do grep -q reloaded "$d/log" && break; sleep 0.05; done
        kill -TERM "$pid"
        wait "$tpid" || fail "trackd under strace: exit $?: $(tail -3 "$d/log")"
        tpid=""
        # every call from trackd's execve on, in every thread
        sed -n "/^$pid  *execve(\"${root//\//\\/}\/usr\/bin\/trackd\"/,\$p" "$d/trace" \
            >"$d/calls"
        sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$d/calls" | sort -u >"$d/used"
        # MemoryDenyWriteExecute=: no W+X mapping, nothing made executable later
        wx='^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(.*(PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE)'
        ! grep -E "$wx" "$d/calls" || fail "trackd maps memory writable and executable"
        ! grep -E '^[0-9]+ +(pkey_)?mprotect\(.*PROT_EXEC' "$d/calls" ||
            fail "trackd makes memory executable with mprotect"
        # RestrictAddressFamilies=, RestrictNamespaces=, LockPersonality=
        fam="$(grep -oE '^[0-9]+ +socket(pair)?\(AF_[A-Z0-9]+' "$d/calls" | sed 's/.*(//' | sort -u)"
        [ -z "$(grep -vxE 'AF_UNIX|AF_INET|AF_INET6' <<<"$fam")" ] ||
            fail "trackd opens sockets of families $fam"
        grep -qx AF_INET <<<"$fam" && grep -qx AF_UNIX <<<"$fam" ||
            fail "strace saw no AF_UNIX and AF_INET sockets: $fam"
        ! grep -qE 'CLONE_NEW|^[0-9]+ +(unshare|setns|personality)\(' "$d/calls" ||
            fail "trackd creates namespaces or changes its personality"
        [ "$(wc -l <"$d/used")" -gt 20 ] || fail "strace: too few system calls seen"
        outside="$(comm -23 "$d/used" "$scratch/allowed" | tr '\n' ' ')"
        [ -z "$outside" ] ||
            fail "trackd calls $outside outside SystemCallFilter= of trackd.service"
        ok "strace: trackd's $(wc -l <"$d/used") system calls all lie in its" \
            "SystemCallFilter=; sockets $(echo $fam); no W+X memory, no namespaces"
    else
        echo "note: no strace: trackd's system calls not checked against the filter"
    fi
else
    echo "note: no systemd-analyze: units not verified (Debian's systemd package brings it)"
fi
echo "package_install: all checks passed"
