#compdef mshmon

__mshmon_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__mshmon_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __mshmon_complete "${completions[@]:0:-1}"
    fi
}

__mshmon_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_mshmon() {
    emulate -RL zsh -G
    setopt extendedglob nullglob numericglobsort
    unsetopt aliases banghist

    local -xr SAP_SHELL=zsh
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(builtin emulate zsh -c 'printf %s "${ZSH_VERSION}"')"
    local -r SAP_SHELL_VERSION

    local context state state_descr line
    local -A opt_args

    local -r command_name="${words[1]}"
    local -ar command_line=("${words[@]}")
    local -ir current_word_index="$((CURRENT - 1))"

    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'tui:The dashboard (the default): live free / list_fd / netstat panes, cycles on a key, a verdict.'
            'cycle:Run connect / subscribe / publish / disconnect cycles headless and judge whether anything leaks.'
            'broker:Run the embedded MQTT 3.1.1 broker (the default peer of mshmon and mshmon cycle).'
            'report:Write a recorded run (its .jsonl or .csv export) as one self-contained HTML report.'
            'replay:Open the dashboard on a recorded run (its .jsonl export) and step through its cycles.'
            'free:Heap of this process: total, used and maximum allocated memory (mallinfo2; with --pid, smaps_rollup).'
            'list_fd:Open file descriptors of this process (/proc/self/fd), or of --pid.'
            'netstat:TCP sockets in lwIP'\''s list_tcps form: this process'\''s, or with --all every socket of the namespace.'
            'list_thread:Threads of this process (/proc/self/task), or of --pid, in RT-Thread'\''s layout.'
            'memtrace:Live records of the MQTT client'\''s owner ledger, then totals per kind; with --pid, what can be said without the heap tap.'
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        tui|cycle|broker|report|replay|free|list_fd|netstat|list_thread|memtrace|help)
            "_mshmon_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_mshmon_tui() {
    local -i ret=1
    local -ar ___tls_version=('1.2' '1.3')
    local -ar ___qos=('0' '1' '2')
    local -ar ___will_qos=('0' '1' '2')
    local -ar ___inject_leak=('socket-race' 'ack-handler' 'tls-context')
    local -ar arg_specs=(
        '--broker[The broker, as mqtt\://HOST\:PORT (IPv6\: mqtt\://\[\:\:1\]\:1883), or mqtts\://HOST\[\:8883\] for TLS. Default\: start the embedded broker.]:url:'
        '*--broker-fault[Fault mode of the embedded broker, repeatable (see mshmon broker --help); not with --broker. A fault that makes cycles fail makes `cycle` exit 4 unless --allow-failures covers it.]:mode:'
        '--broker-bind[Address the embedded broker listens on (default 127.0.0.1; 0.0.0.0 or \:\: for a device on the bench network); not with --broker.]:address:'
        '--broker-port[Port of the embedded broker (default\: a free one); a device'\''s firmware usually names 1883. Not with --broker.]:port:'
        '--tls[The embedded broker serves TLS, with a CA made at start that the client trusts\: TLS cycles, no set-up. Not with --broker (give mqtts\://).]'
        '--cafile[PEM file of the CA certificate(s) to trust for mqtts\:// (default\: the system trust store).]:path:'
        '--cert[Client certificate (PEM) for a broker that asks for one; with --key.]:path:'
        '--key[Private key (PEM) of --cert; its passphrase, if any, comes from MSHMON_KEY_PASSWORD.]:path:'
        '--insecure[Do not verify the broker'\''s certificate (TLS only; a warning says so).]'
        '--tls-version[Lowest TLS version\: 1.2 or 1.3.]:version:{__mshmon_complete "${___tls_version[@]}"}'
        '(-i --client-id)'{-i,--client-id}'[Client identifier (default\: mshmon-PID).]:client-id:'
        '(-u --username)'{-u,--username}'[User name. The password comes from MSHMON_PASSWORD or --password-file.]:username:'
        '--password-file[A file whose first line is the password.]:path:'
        '(-k --keepalive)'{-k,--keepalive}'[Keepalive in seconds (0\: off).]:keepalive:'
        '*'{-t,--topic}'[Subscribe this filter each cycle (repeatable; default\: two filters, as on the device).]:topic:'
        '(-q --qos)'{-q,--qos}'[QoS of publishes and subscriptions\: 0, 1 or 2.]:qos:{__mshmon_complete "${___qos[@]}"}'
        '--max-inflight[Unacknowledged QoS 1/2 publishes at once.]:max-inflight:'
        '--clean-session[Start each connection with a clean session.]'
        '--no-clean-session[Start each connection with a clean session.]'
        '--will-topic[Will topic (published by the broker if the connection drops).]:will-topic:'
        '--will-payload[Will payload.]:will-payload:'
        '--will-qos[Will QoS.]:will-qos:{__mshmon_complete "${___will_qos[@]}"}'
        '--will-retain[Retain the will.]'
        '--inject-leak[Replay a leak on purpose (a positive control)\: socket-race or ack-handler (the seed'\''s bugs), tls-context (keeps each closed connection'\''s TLS object; TLS only).]:bug:{__mshmon_complete "${___inject_leak[@]}"}'
        '--metrics[Serve Prometheus metrics at http\://ADDRESS\:PORT/metrics while the run lasts (e.g. 127.0.0.1\:9464, \[\:\:1\]\:9464, 0.0.0.0\:9464).]:address\:port:'
        '--metrics-file[Write the metrics to this node_exporter textfile (name ending in .prom), replaced atomically after each cycle.]:path:'
        '--pid[Watch this running process instead of driving mshmon'\''s own client (heap from smaps_rollup, or from the heap tap'\''s table when the process runs under it\: LD_PRELOAD=libmshmontap.so MSHMON_TAP_FILE=/dev/shm/FILE).]:pid:'
        '--kick-every[With a target and the embedded broker\: close the target'\''s connection from the broker'\''s side this often (90s, 500ms), so its reconnect path is cycled.]:time:'
        '--every[With a target\: sample on this timer instead of per connection, for a client that never reconnects.]:time:'
        '--timeout[With a target\: end the run (exit 4) when no cycle comes for this long.]:time:'
        '*--alloc-wrapper[A function of the target that only wraps the allocator (repeatable)\: heap sites are named by their caller. Names mentioning alloc or strdup are recognised without it.]:name:'
        '--no-tap[Launch the target without the heap tap (heap from smaps_rollup, coarser).]'
        '--console[Watch an RT-Thread device through its msh console\: a serial device (/dev/ttyUSB0, a pty), telnet\://HOST\[\:PORT\], or exec\:COMMAND (a program whose stdin and stdout are the console, run by /bin/sh on a pty; {host} {port} {url} in it are the embedded broker).]:console:'
        '--baud[The serial console'\''s baud rate (8N1, raw).]:rate:'
        '--prompt[The device'\''s prompt, when it is not `msh />` or `finsh />`.]:text:'
        '--cycle-command[A device command that runs one MQTT cycle (typed, then the device sampled, back to back) instead of cycles seen at the broker.]:command:'
        '--console-timeout[How long a device command may go without a byte before it counts as unanswered.]:time:'
        '*:command:'
        '--refresh[Refresh interval in milliseconds.]:refresh:'
        '--no-color[Monochrome (also when NO_COLOR is set).]'
        '--no-mouse[Leave the mouse to the terminal (no click-to-focus, no wheel scrolling).]'
        '*--export[Stream the session to a file\: .log, .csv or .jsonl. Repeatable.]:path:'
        '--export-dir[Where the export key writes its files.]:dir:'
        '--settle[Wait after each disconnect before sampling, in milliseconds.]:settle:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_cycle() {
    local -i ret=1
    local -ar ___tls_version=('1.2' '1.3')
    local -ar ___qos=('0' '1' '2')
    local -ar ___will_qos=('0' '1' '2')
    local -ar ___inject_leak=('socket-race' 'ack-handler' 'tls-context')
    local -ar arg_specs=(
        '--broker[The broker, as mqtt\://HOST\:PORT (IPv6\: mqtt\://\[\:\:1\]\:1883), or mqtts\://HOST\[\:8883\] for TLS. Default\: start the embedded broker.]:url:'
        '*--broker-fault[Fault mode of the embedded broker, repeatable (see mshmon broker --help); not with --broker. A fault that makes cycles fail makes `cycle` exit 4 unless --allow-failures covers it.]:mode:'
        '--broker-bind[Address the embedded broker listens on (default 127.0.0.1; 0.0.0.0 or \:\: for a device on the bench network); not with --broker.]:address:'
        '--broker-port[Port of the embedded broker (default\: a free one); a device'\''s firmware usually names 1883. Not with --broker.]:port:'
        '--tls[The embedded broker serves TLS, with a CA made at start that the client trusts\: TLS cycles, no set-up. Not with --broker (give mqtts\://).]'
        '--cafile[PEM file of the CA certificate(s) to trust for mqtts\:// (default\: the system trust store).]:path:'
        '--cert[Client certificate (PEM) for a broker that asks for one; with --key.]:path:'
        '--key[Private key (PEM) of --cert; its passphrase, if any, comes from MSHMON_KEY_PASSWORD.]:path:'
        '--insecure[Do not verify the broker'\''s certificate (TLS only; a warning says so).]'
        '--tls-version[Lowest TLS version\: 1.2 or 1.3.]:version:{__mshmon_complete "${___tls_version[@]}"}'
        '(-i --client-id)'{-i,--client-id}'[Client identifier (default\: mshmon-PID).]:client-id:'
        '(-u --username)'{-u,--username}'[User name. The password comes from MSHMON_PASSWORD or --password-file.]:username:'
        '--password-file[A file whose first line is the password.]:path:'
        '(-k --keepalive)'{-k,--keepalive}'[Keepalive in seconds (0\: off).]:keepalive:'
        '*'{-t,--topic}'[Subscribe this filter each cycle (repeatable; default\: two filters, as on the device).]:topic:'
        '(-q --qos)'{-q,--qos}'[QoS of publishes and subscriptions\: 0, 1 or 2.]:qos:{__mshmon_complete "${___qos[@]}"}'
        '--max-inflight[Unacknowledged QoS 1/2 publishes at once.]:max-inflight:'
        '--clean-session[Start each connection with a clean session.]'
        '--no-clean-session[Start each connection with a clean session.]'
        '--will-topic[Will topic (published by the broker if the connection drops).]:will-topic:'
        '--will-payload[Will payload.]:will-payload:'
        '--will-qos[Will QoS.]:will-qos:{__mshmon_complete "${___will_qos[@]}"}'
        '--will-retain[Retain the will.]'
        '--inject-leak[Replay a leak on purpose (a positive control)\: socket-race or ack-handler (the seed'\''s bugs), tls-context (keeps each closed connection'\''s TLS object; TLS only).]:bug:{__mshmon_complete "${___inject_leak[@]}"}'
        '--metrics[Serve Prometheus metrics at http\://ADDRESS\:PORT/metrics while the run lasts (e.g. 127.0.0.1\:9464, \[\:\:1\]\:9464, 0.0.0.0\:9464).]:address\:port:'
        '--metrics-file[Write the metrics to this node_exporter textfile (name ending in .prom), replaced atomically after each cycle.]:path:'
        '--pid[Watch this running process instead of driving mshmon'\''s own client (heap from smaps_rollup, or from the heap tap'\''s table when the process runs under it\: LD_PRELOAD=libmshmontap.so MSHMON_TAP_FILE=/dev/shm/FILE).]:pid:'
        '--kick-every[With a target and the embedded broker\: close the target'\''s connection from the broker'\''s side this often (90s, 500ms), so its reconnect path is cycled.]:time:'
        '--every[With a target\: sample on this timer instead of per connection, for a client that never reconnects.]:time:'
        '--timeout[With a target\: end the run (exit 4) when no cycle comes for this long.]:time:'
        '*--alloc-wrapper[A function of the target that only wraps the allocator (repeatable)\: heap sites are named by their caller. Names mentioning alloc or strdup are recognised without it.]:name:'
        '--no-tap[Launch the target without the heap tap (heap from smaps_rollup, coarser).]'
        '--console[Watch an RT-Thread device through its msh console\: a serial device (/dev/ttyUSB0, a pty), telnet\://HOST\[\:PORT\], or exec\:COMMAND (a program whose stdin and stdout are the console, run by /bin/sh on a pty; {host} {port} {url} in it are the embedded broker).]:console:'
        '--baud[The serial console'\''s baud rate (8N1, raw).]:rate:'
        '--prompt[The device'\''s prompt, when it is not `msh />` or `finsh />`.]:text:'
        '--cycle-command[A device command that runs one MQTT cycle (typed, then the device sampled, back to back) instead of cycles seen at the broker.]:command:'
        '--console-timeout[How long a device command may go without a byte before it counts as unanswered.]:time:'
        '*:command:'
        '(-n --count)'{-n,--count}'[Number of cycles.]:count:'
        '--duration[Run for this long instead of a count\: 90s, 30m, 8h.]:time:'
        '--interval[Pause between cycles, in milliseconds.]:interval:'
        '--publish[Messages published per cycle.]:publish:'
        '--payload-size[Payload size of each message, in bytes.]:payload-size:'
        '--settle[Wait after each disconnect before sampling, in milliseconds.]:settle:'
        '--warmup[Cycles left out of the verdict at the start.]:warmup:'
        '--heap-threshold[Heap growth per cycle below this is noise, in bytes (default 32; 1 for a target under the heap tap, whose counts are exact).]:bytes:'
        '*--export[Stream the session to a file\: .log (msh transcript), .csv or .jsonl. Repeatable.]:path:'
        '--allow-failures[Failed cycles tolerated before the run exits 4\: a count (5) or a share of the cycles run (10%).]:n|p%:'
        '--no-sample[Do not sample the process per cycle (to time the client alone)\: only its fds and RSS after the first cycle and at the end are printed; the verdict then measures nothing.]'
        '--json[Print the report as one JSON object instead of the verdict line.]'
        '--quiet[Print nothing per cycle, only the verdict.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_broker() {
    local -i ret=1
    local -ar arg_specs=(
        '--port[TCP port (0\: any free port).]:port:'
        '--bind[Listen on this IPv4 or IPv6 address (0.0.0.0 or \:\: for every interface).]:address:'
        '*--fault[Misbehave on purpose (repeatable)\: none, close-after-connack, no-connack, no-suback, no-pingresp, reset, slow\:MS, garbage, deny-subscribe\:FILTER\[,FILTER…\], tls-expired, tls-wrong-host, tls-close-mid-handshake.]:mode:'
        '--password-file[mosquitto-style plain `user\:password` lines; without it anonymous clients are allowed.]:path:'
        '--max-packet-size[Largest packet accepted, in bytes.]:max-packet-size:'
        '--max-connections[Most connections at once.]:max-connections:'
        '--max-queued[Most messages queued for an offline persistent session (oldest dropped).]:max-queued:'
        '--tls[Serve MQTT over TLS (mqtts)\: with --cert/--key, or a CA and certificate made now.]'
        '--cert[Server certificate chain (PEM) for --tls, with --key.]:path:'
        '--key[Private key (PEM) of --cert.]:path:'
        '--ca-out[Write the generated CA certificate here (kept after the broker stops).]:path:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_report() {
    local -i ret=1
    local -ar arg_specs=(
        ':run:'
        '(-o --output)'{-o,--output}'[Where to write the report (default\: the run'\''s name with .html).]:path:'
        '--warmup[Cycles before the verdict'\''s window starts (default\: the run'\''s --warmup, else 10).]:warmup:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_replay() {
    local -i ret=1
    local -ar arg_specs=(
        ':run:'
        '--warmup[Cycles before the verdict'\''s window starts (default\: the run'\''s --warmup, else 10).]:warmup:'
        '--no-color[Monochrome (also when NO_COLOR is set).]'
        '--no-mouse[Leave the mouse to the terminal.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_free() {
    local -i ret=1
    local -ar arg_specs=(
        '--pid[Another process instead of this one (read from /proc/PID).]:pid:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_list_fd() {
    local -i ret=1
    local -ar arg_specs=(
        '--pid[Another process instead of this one (read from /proc/PID).]:pid:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_netstat() {
    local -i ret=1
    local -ar arg_specs=(
        '(-a --all)'{-a,--all}'[Every TCP socket of the network namespace, like `ss -tan`.]'
        '--pid[Another process instead of this one (read from /proc/PID).]:pid:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_list_thread() {
    local -i ret=1
    local -ar arg_specs=(
        '--pid[Another process instead of this one (read from /proc/PID).]:pid:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_memtrace() {
    local -i ret=1
    local -ar arg_specs=(
        '--pid[Another process instead of this one (read from /proc/PID).]:pid:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_mshmon_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _mshmon ]]; then
    _mshmon "${@}"
else
    compdef _mshmon mshmon
fi
