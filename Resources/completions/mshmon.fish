function __mshmon_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mshmon_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __mshmon_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __mshmon_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __mshmon_parse_tokens -S
    set -l unparsed_tokens (__mshmon_tokens -pc)
    switch $unparsed_tokens[1]
    case 'mshmon'
        __mshmon_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'tui'
            __mshmon_parse_subcommand -r 1 'broker=' 'broker-fault=+' 'broker-bind=' 'broker-port=' 'tls' 'cafile=' 'cert=' 'key=' 'insecure' 'tls-version=' 'i/client-id=' 'u/username=' 'password-file=' 'k/keepalive=' 't/topic=+' 'q/qos=' 'max-inflight=' 'clean-session' 'no-clean-session' 'will-topic=' 'will-payload=' 'will-qos=' 'will-retain' 'inject-leak=' 'metrics=' 'metrics-file=' 'pid=' 'kick-every=' 'every=' 'timeout=' 'alloc-wrapper=+' 'no-tap' 'console=' 'baud=' 'prompt=' 'cycle-command=' 'console-timeout=' 'refresh=' 'no-color' 'no-mouse' 'export=+' 'export-dir=' 'settle=' 'version' 'h/help'
        case 'cycle'
            __mshmon_parse_subcommand -r 1 'broker=' 'broker-fault=+' 'broker-bind=' 'broker-port=' 'tls' 'cafile=' 'cert=' 'key=' 'insecure' 'tls-version=' 'i/client-id=' 'u/username=' 'password-file=' 'k/keepalive=' 't/topic=+' 'q/qos=' 'max-inflight=' 'clean-session' 'no-clean-session' 'will-topic=' 'will-payload=' 'will-qos=' 'will-retain' 'inject-leak=' 'metrics=' 'metrics-file=' 'pid=' 'kick-every=' 'every=' 'timeout=' 'alloc-wrapper=+' 'no-tap' 'console=' 'baud=' 'prompt=' 'cycle-command=' 'console-timeout=' 'n/count=' 'duration=' 'interval=' 'publish=' 'payload-size=' 'settle=' 'warmup=' 'heap-threshold=' 'export=+' 'allow-failures=' 'no-sample' 'json' 'quiet' 'version' 'h/help'
        case 'broker'
            __mshmon_parse_subcommand 0 'port=' 'bind=' 'fault=+' 'password-file=' 'max-packet-size=' 'max-connections=' 'max-queued=' 'tls' 'cert=' 'key=' 'ca-out=' 'version' 'h/help'
        case 'report'
            __mshmon_parse_subcommand 1 'o/output=' 'warmup=' 'version' 'h/help'
        case 'replay'
            __mshmon_parse_subcommand 1 'warmup=' 'no-color' 'no-mouse' 'version' 'h/help'
        case 'free'
            __mshmon_parse_subcommand 0 'pid=' 'version' 'h/help'
        case 'list_fd'
            __mshmon_parse_subcommand 0 'pid=' 'version' 'h/help'
        case 'netstat'
            __mshmon_parse_subcommand 0 'a/all' 'pid=' 'version' 'h/help'
        case 'list_thread'
            __mshmon_parse_subcommand 0 'pid=' 'version' 'h/help'
        case 'memtrace'
            __mshmon_parse_subcommand 0 'pid=' 'version' 'h/help'
        case 'help'
            __mshmon_parse_subcommand -r 1 'version'
        end
    end
end

function __mshmon_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __mshmon_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __mshmon_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __mshmon_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__mshmon_tokens -p)
    if test -z "$(__mshmon_tokens -t)"
        set -l index (count (__mshmon_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'mshmon' -f
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'tui' -d 'The dashboard (the default): live free / list_fd / netstat panes, cycles on a key, a verdict.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'cycle' -d 'Run connect / subscribe / publish / disconnect cycles headless and judge whether anything leaks.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'broker' -d 'Run the embedded MQTT 3.1.1 broker (the default peer of mshmon and mshmon cycle).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'report' -d 'Write a recorded run (its .jsonl or .csv export) as one self-contained HTML report.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'replay' -d 'Open the dashboard on a recorded run (its .jsonl export) and step through its cycles.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'free' -d 'Heap of this process: total, used and maximum allocated memory (mallinfo2; with --pid, smaps_rollup).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'list_fd' -d 'Open file descriptors of this process (/proc/self/fd), or of --pid.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'netstat' -d 'TCP sockets in lwIP\'s list_tcps form: this process\'s, or with --all every socket of the namespace.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'list_thread' -d 'Threads of this process (/proc/self/task), or of --pid, in RT-Thread\'s layout.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'memtrace' -d 'Live records of the MQTT client\'s owner ledger, then totals per kind; with --pid, what can be said without the heap tap.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_positional "mshmon" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" broker' -l 'broker' -d 'The broker, as mqtt://HOST:PORT (IPv6: mqtt://[::1]:1883), or mqtts://HOST[:8883] for TLS. Default: start the embedded broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui"' -l 'broker-fault' -d 'Fault mode of the embedded broker, repeatable (see mshmon broker --help); not with --broker. A fault that makes cycles fail makes `cycle` exit 4 unless --allow-failures covers it.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" broker-bind' -l 'broker-bind' -d 'Address the embedded broker listens on (default 127.0.0.1; 0.0.0.0 or :: for a device on the bench network); not with --broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" broker-port' -l 'broker-port' -d 'Port of the embedded broker (default: a free one); a device\'s firmware usually names 1883. Not with --broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" tls' -l 'tls' -d 'The embedded broker serves TLS, with a CA made at start that the client trusts: TLS cycles, no set-up. Not with --broker (give mqtts://).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" cafile' -l 'cafile' -d 'PEM file of the CA certificate(s) to trust for mqtts:// (default: the system trust store).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" cert' -l 'cert' -d 'Client certificate (PEM) for a broker that asks for one; with --key.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" key' -l 'key' -d 'Private key (PEM) of --cert; its passphrase, if any, comes from MSHMON_KEY_PASSWORD.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" insecure' -l 'insecure' -d 'Do not verify the broker\'s certificate (TLS only; a warning says so).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" tls-version' -l 'tls-version' -d 'Lowest TLS version: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" client-id i' -s 'i' -l 'client-id' -d 'Client identifier (default: mshmon-PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" u username' -s 'u' -l 'username' -d 'User name. The password comes from MSHMON_PASSWORD or --password-file.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" password-file' -l 'password-file' -d 'A file whose first line is the password.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" k keepalive' -s 'k' -l 'keepalive' -d 'Keepalive in seconds (0: off).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui"' -s 't' -l 'topic' -d 'Subscribe this filter each cycle (repeatable; default: two filters, as on the device).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" q qos' -s 'q' -l 'qos' -d 'QoS of publishes and subscriptions: 0, 1 or 2.' -rfka '0 1 2'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" max-inflight' -l 'max-inflight' -d 'Unacknowledged QoS 1/2 publishes at once.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" clean-session' -l 'clean-session' -d 'Start each connection with a clean session.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" no-clean-session' -l 'no-clean-session' -d 'Start each connection with a clean session.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" will-topic' -l 'will-topic' -d 'Will topic (published by the broker if the connection drops).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" will-payload' -l 'will-payload' -d 'Will payload.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" will-qos' -l 'will-qos' -d 'Will QoS.' -rfka '0 1 2'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" will-retain' -l 'will-retain' -d 'Retain the will.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" inject-leak' -l 'inject-leak' -d 'Replay a leak on purpose (a positive control): socket-race or ack-handler (the seed\'s bugs), tls-context (keeps each closed connection\'s TLS object; TLS only).' -rfka 'socket-race ack-handler tls-context'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" metrics' -l 'metrics' -d 'Serve Prometheus metrics at http://ADDRESS:PORT/metrics while the run lasts (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" metrics-file' -l 'metrics-file' -d 'Write the metrics to this node_exporter textfile (name ending in .prom), replaced atomically after each cycle.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" pid' -l 'pid' -d 'Watch this running process instead of driving mshmon\'s own client (heap from smaps_rollup, or from the heap tap\'s table when the process runs under it: LD_PRELOAD=libmshmontap.so MSHMON_TAP_FILE=/dev/shm/FILE).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" kick-every' -l 'kick-every' -d 'With a target and the embedded broker: close the target\'s connection from the broker\'s side this often (90s, 500ms), so its reconnect path is cycled.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" every' -l 'every' -d 'With a target: sample on this timer instead of per connection, for a client that never reconnects.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" timeout' -l 'timeout' -d 'With a target: end the run (exit 4) when no cycle comes for this long.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui"' -l 'alloc-wrapper' -d 'A function of the target that only wraps the allocator (repeatable): heap sites are named by their caller. Names mentioning alloc or strdup are recognised without it.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" no-tap' -l 'no-tap' -d 'Launch the target without the heap tap (heap from smaps_rollup, coarser).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" console' -l 'console' -d 'Watch an RT-Thread device through its msh console: a serial device (/dev/ttyUSB0, a pty), telnet://HOST[:PORT], or exec:COMMAND (a program whose stdin and stdout are the console, run by /bin/sh on a pty; {host} {port} {url} in it are the embedded broker).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" baud' -l 'baud' -d 'The serial console\'s baud rate (8N1, raw).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" prompt' -l 'prompt' -d 'The device\'s prompt, when it is not `msh />` or `finsh />`.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" cycle-command' -l 'cycle-command' -d 'A device command that runs one MQTT cycle (typed, then the device sampled, back to back) instead of cycles seen at the broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" console-timeout' -l 'console-timeout' -d 'How long a device command may go without a byte before it counts as unanswered.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" refresh' -l 'refresh' -d 'Refresh interval in milliseconds.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" no-color' -l 'no-color' -d 'Monochrome (also when NO_COLOR is set).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" no-mouse' -l 'no-mouse' -d 'Leave the mouse to the terminal (no click-to-focus, no wheel scrolling).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui"' -l 'export' -d 'Stream the session to a file: .log, .csv or .jsonl. Repeatable.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" export-dir' -l 'export-dir' -d 'Where the export key writes its files.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" settle' -l 'settle' -d 'Wait after each disconnect before sampling, in milliseconds.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon tui" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" broker' -l 'broker' -d 'The broker, as mqtt://HOST:PORT (IPv6: mqtt://[::1]:1883), or mqtts://HOST[:8883] for TLS. Default: start the embedded broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle"' -l 'broker-fault' -d 'Fault mode of the embedded broker, repeatable (see mshmon broker --help); not with --broker. A fault that makes cycles fail makes `cycle` exit 4 unless --allow-failures covers it.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" broker-bind' -l 'broker-bind' -d 'Address the embedded broker listens on (default 127.0.0.1; 0.0.0.0 or :: for a device on the bench network); not with --broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" broker-port' -l 'broker-port' -d 'Port of the embedded broker (default: a free one); a device\'s firmware usually names 1883. Not with --broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" tls' -l 'tls' -d 'The embedded broker serves TLS, with a CA made at start that the client trusts: TLS cycles, no set-up. Not with --broker (give mqtts://).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" cafile' -l 'cafile' -d 'PEM file of the CA certificate(s) to trust for mqtts:// (default: the system trust store).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" cert' -l 'cert' -d 'Client certificate (PEM) for a broker that asks for one; with --key.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" key' -l 'key' -d 'Private key (PEM) of --cert; its passphrase, if any, comes from MSHMON_KEY_PASSWORD.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" insecure' -l 'insecure' -d 'Do not verify the broker\'s certificate (TLS only; a warning says so).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" tls-version' -l 'tls-version' -d 'Lowest TLS version: 1.2 or 1.3.' -rfka '1.2 1.3'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" client-id i' -s 'i' -l 'client-id' -d 'Client identifier (default: mshmon-PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" u username' -s 'u' -l 'username' -d 'User name. The password comes from MSHMON_PASSWORD or --password-file.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" password-file' -l 'password-file' -d 'A file whose first line is the password.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" k keepalive' -s 'k' -l 'keepalive' -d 'Keepalive in seconds (0: off).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle"' -s 't' -l 'topic' -d 'Subscribe this filter each cycle (repeatable; default: two filters, as on the device).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" q qos' -s 'q' -l 'qos' -d 'QoS of publishes and subscriptions: 0, 1 or 2.' -rfka '0 1 2'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" max-inflight' -l 'max-inflight' -d 'Unacknowledged QoS 1/2 publishes at once.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" clean-session' -l 'clean-session' -d 'Start each connection with a clean session.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" no-clean-session' -l 'no-clean-session' -d 'Start each connection with a clean session.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" will-topic' -l 'will-topic' -d 'Will topic (published by the broker if the connection drops).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" will-payload' -l 'will-payload' -d 'Will payload.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" will-qos' -l 'will-qos' -d 'Will QoS.' -rfka '0 1 2'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" will-retain' -l 'will-retain' -d 'Retain the will.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" inject-leak' -l 'inject-leak' -d 'Replay a leak on purpose (a positive control): socket-race or ack-handler (the seed\'s bugs), tls-context (keeps each closed connection\'s TLS object; TLS only).' -rfka 'socket-race ack-handler tls-context'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" metrics' -l 'metrics' -d 'Serve Prometheus metrics at http://ADDRESS:PORT/metrics while the run lasts (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" metrics-file' -l 'metrics-file' -d 'Write the metrics to this node_exporter textfile (name ending in .prom), replaced atomically after each cycle.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" pid' -l 'pid' -d 'Watch this running process instead of driving mshmon\'s own client (heap from smaps_rollup, or from the heap tap\'s table when the process runs under it: LD_PRELOAD=libmshmontap.so MSHMON_TAP_FILE=/dev/shm/FILE).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" kick-every' -l 'kick-every' -d 'With a target and the embedded broker: close the target\'s connection from the broker\'s side this often (90s, 500ms), so its reconnect path is cycled.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" every' -l 'every' -d 'With a target: sample on this timer instead of per connection, for a client that never reconnects.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" timeout' -l 'timeout' -d 'With a target: end the run (exit 4) when no cycle comes for this long.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle"' -l 'alloc-wrapper' -d 'A function of the target that only wraps the allocator (repeatable): heap sites are named by their caller. Names mentioning alloc or strdup are recognised without it.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" no-tap' -l 'no-tap' -d 'Launch the target without the heap tap (heap from smaps_rollup, coarser).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" console' -l 'console' -d 'Watch an RT-Thread device through its msh console: a serial device (/dev/ttyUSB0, a pty), telnet://HOST[:PORT], or exec:COMMAND (a program whose stdin and stdout are the console, run by /bin/sh on a pty; {host} {port} {url} in it are the embedded broker).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" baud' -l 'baud' -d 'The serial console\'s baud rate (8N1, raw).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" prompt' -l 'prompt' -d 'The device\'s prompt, when it is not `msh />` or `finsh />`.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" cycle-command' -l 'cycle-command' -d 'A device command that runs one MQTT cycle (typed, then the device sampled, back to back) instead of cycles seen at the broker.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" console-timeout' -l 'console-timeout' -d 'How long a device command may go without a byte before it counts as unanswered.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" count n' -s 'n' -l 'count' -d 'Number of cycles.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" duration' -l 'duration' -d 'Run for this long instead of a count: 90s, 30m, 8h.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" interval' -l 'interval' -d 'Pause between cycles, in milliseconds.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" publish' -l 'publish' -d 'Messages published per cycle.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" payload-size' -l 'payload-size' -d 'Payload size of each message, in bytes.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" settle' -l 'settle' -d 'Wait after each disconnect before sampling, in milliseconds.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" warmup' -l 'warmup' -d 'Cycles left out of the verdict at the start.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" heap-threshold' -l 'heap-threshold' -d 'Heap growth per cycle below this is noise, in bytes (default 32; 1 for a target under the heap tap, whose counts are exact).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle"' -l 'export' -d 'Stream the session to a file: .log (msh transcript), .csv or .jsonl. Repeatable.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" allow-failures' -l 'allow-failures' -d 'Failed cycles tolerated before the run exits 4: a count (5) or a share of the cycles run (10%).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" no-sample' -l 'no-sample' -d 'Do not sample the process per cycle (to time the client alone): only its fds and RSS after the first cycle and at the end are printed; the verdict then measures nothing.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" json' -l 'json' -d 'Print the report as one JSON object instead of the verdict line.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" quiet' -l 'quiet' -d 'Print nothing per cycle, only the verdict.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon cycle" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" port' -l 'port' -d 'TCP port (0: any free port).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" bind' -l 'bind' -d 'Listen on this IPv4 or IPv6 address (0.0.0.0 or :: for every interface).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker"' -l 'fault' -d 'Misbehave on purpose (repeatable): none, close-after-connack, no-connack, no-suback, no-pingresp, reset, slow:MS, garbage, deny-subscribe:FILTER[,FILTER…], tls-expired, tls-wrong-host, tls-close-mid-handshake.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" password-file' -l 'password-file' -d 'mosquitto-style plain `user:password` lines; without it anonymous clients are allowed.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" max-packet-size' -l 'max-packet-size' -d 'Largest packet accepted, in bytes.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" max-connections' -l 'max-connections' -d 'Most connections at once.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" max-queued' -l 'max-queued' -d 'Most messages queued for an offline persistent session (oldest dropped).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" tls' -l 'tls' -d 'Serve MQTT over TLS (mqtts): with --cert/--key, or a CA and certificate made now.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" cert' -l 'cert' -d 'Server certificate chain (PEM) for --tls, with --key.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" key' -l 'key' -d 'Private key (PEM) of --cert.' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" ca-out' -l 'ca-out' -d 'Write the generated CA certificate here (kept after the broker stops).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon broker" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon report" o output' -s 'o' -l 'output' -d 'Where to write the report (default: the run\'s name with .html).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon report" warmup' -l 'warmup' -d 'Cycles before the verdict\'s window starts (default: the run\'s --warmup, else 10).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon report" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon report" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon replay" warmup' -l 'warmup' -d 'Cycles before the verdict\'s window starts (default: the run\'s --warmup, else 10).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon replay" no-color' -l 'no-color' -d 'Monochrome (also when NO_COLOR is set).'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon replay" no-mouse' -l 'no-mouse' -d 'Leave the mouse to the terminal.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon replay" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon replay" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon free" pid' -l 'pid' -d 'Another process instead of this one (read from /proc/PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon free" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon free" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon list_fd" pid' -l 'pid' -d 'Another process instead of this one (read from /proc/PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon list_fd" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon list_fd" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon netstat" a all' -s 'a' -l 'all' -d 'Every TCP socket of the network namespace, like `ss -tan`.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon netstat" pid' -l 'pid' -d 'Another process instead of this one (read from /proc/PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon netstat" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon netstat" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon list_thread" pid' -l 'pid' -d 'Another process instead of this one (read from /proc/PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon list_thread" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon list_thread" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon memtrace" pid' -l 'pid' -d 'Another process instead of this one (read from /proc/PID).' -rfka ''
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon memtrace" version' -l 'version' -d 'Show the version.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon memtrace" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'mshmon' -n '__mshmon_should_offer_completions_for_flags_or_options "mshmon help" version' -l 'version' -d 'Show the version.'
