# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lqx_global_optspecs
    string join \n server= context= o/output= columns= no-headers no-input debug timeout= ca-cert= h/help V/version
end

function __fish_lqx_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lqx_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lqx_using_subcommand
    set -l cmd (__fish_lqx_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lqx -n "__fish_lqx_needs_command" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_needs_command" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_needs_command" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_needs_command" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_needs_command" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_needs_command" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_needs_command" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_needs_command" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_needs_command" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_needs_command" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "login" -d 'Log in to a server and store the token'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "logout" -d 'End the session on the server and delete the stored token'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "auth" -d 'Show or print the current credentials'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "context" -d 'Manage contexts (servers and accounts)'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "vm" -d 'Manage virtual machines'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "node" -d 'Manage hypervisor nodes'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "user" -d 'Manage users (admins)'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "apikey" -d 'Manage API keys (service-account tokens for CI)'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "audit" -d 'Read the audit log'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "alert" -d 'List, acknowledge and resolve alerts; manage webhooks'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "drs" -d 'Distributed resource scheduler: status, recommendations, runs'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "ha" -d 'High availability: status, manual failover, offline simulation'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "watch" -d 'Stream live events (JSON lines when stdout is not a terminal)'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "completion" -d 'Print a shell completion script'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "help" -d 'Help on a command or topic (`lqx help exit-codes`)'
complete -c lqx -n "__fish_lqx_needs_command" -f -a "__generate-docs" -d 'Write completions and man pages into DIR (for packaging; see completions/README.md)'
complete -c lqx -n "__fish_lqx_using_subcommand login" -s u -l username -d 'Username (prompted for on a terminal)' -r
complete -c lqx -n "__fish_lqx_using_subcommand login" -l token-storage -d 'Where to store the token' -r -f -a "keyring\t'The OS keyring (Secret Service, macOS Keychain, Windows Credential Manager)'
file\t'A 0600 file under the config dir (--insecure-storage)'"
complete -c lqx -n "__fish_lqx_using_subcommand login" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand login" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand login" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand login" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand login" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand login" -l password-stdin -d 'Read the password from stdin (one line)'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l with-token -d 'Read an API key from stdin instead of logging in with a password'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l sso -d 'Log in through the server\'s OpenID provider (single sign-on): in the browser when one can be opened, else with a code to enter on another device'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l browser -d 'With --sso: log in in the browser (loopback redirect with PKCE)'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l device -d 'With --sso: the device flow (a URL and a code to enter anywhere), for SSH sessions and machines without a browser'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l insecure-storage -d 'Store the token in a 0600 file under the config dir instead of the OS keyring'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand login" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand login" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand logout" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l all -d 'End every session of your user, on every device'
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand logout" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand logout" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -f -a "status" -d 'Server, user, role, expiry and where the token is stored'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and not __fish_seen_subcommand_from status token" -f -a "token" -d 'Print the access token (refreshed if needed), e.g. for curl'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l show-token -d 'Also print the access token'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand auth; and __fish_seen_subcommand_from token" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -f -a "list" -d 'List contexts'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -f -a "use" -d 'Make a context the current one'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -f -a "show" -d 'Show a context (default: the current one)'
complete -c lqx -n "__fish_lqx_using_subcommand context; and not __fish_seen_subcommand_from list use show delete" -f -a "delete" -d 'Delete a context and its stored token'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from use" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Do not ask for confirmation (required when not interactive)'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand context; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "create" -d 'Create a VM'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "list" -d 'List VMs'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "get" -d 'Show a VM'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "update" -d 'Change a VM\'s CPU, memory, description or labels'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "start" -d 'Start a VM'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "stop" -d 'Stop a VM (graceful shutdown; --force powers it off)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "reboot" -d 'Reboot a VM'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "delete" -d 'Delete a VM'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "migrate" -d 'Migrate a VM to another node (live unless --cold)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and not __fish_seen_subcommand_from create list get update start stop reboot delete migrate watch" -f -a "watch" -d 'Follow changes of one VM or all VMs'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l cpu -d 'Virtual CPUs' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l memory -d 'Memory, e.g. 512MiB, 4GiB' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l disk -d 'Disk size, e.g. 20GiB (repeat for more disks)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l pool -d 'Storage pool for the disks' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l network -d 'Network or bridge (repeat for more NICs)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l node -d 'Pin to a node (name or id); default: the scheduler picks' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l ha-priority -d 'HA restart priority' -r -f -a "low\t''
medium\t''
high\t''
highest\t''"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l anti-affinity -d 'Keep apart from other VMs of this group' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -s l -l label -d 'Label key=value (repeatable)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l description -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l project -d 'Project; default: the default project' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l ha -d 'Restart it elsewhere when its node fails'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l start -d 'Start it once created'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l node -d 'Only VMs on this node (name or id)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l state -d 'Only VMs in this state' -r -f -a "pending\t''
stopped\t''
starting\t''
running\t''
stopping\t''
migrating\t''
paused\t''
failed\t''
unknown\t''"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -s l -l label -d 'Only VMs with this label key=value (repeatable; all must match)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l name-prefix -d 'Only VMs whose name starts with this' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l project -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l cpu -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l memory -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l description -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -s l -l label -d 'Replace the labels with these key=value pairs (repeatable)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l force -d 'Power off instead of a graceful shutdown'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from stop" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from reboot" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l force -d 'Stop it first if it runs'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Do not ask for confirmation (required when not interactive)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l to -d 'Target node (name or id); default: the scheduler picks' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l bandwidth -d 'Live: bandwidth cap in MiB/s' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l timeout -d 'Live: abort after this long (e.g. 10m), or switch to post-copy with --post-copy' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l cold -d 'Stop, move and start instead of a live migration (the guest is down meanwhile; without it a running VM moves live or not at all)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l cancel -d 'Abort the live migration of this VM in flight; it keeps running on its source'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l auto-converge -d 'Live: throttle a guest that dirties memory faster than it is copied'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l post-copy -d 'Live: at the timeout, switch to post-copy (finishes, but a network failure then loses the guest) instead of aborting'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l tunnelled -d 'Live: carry the migration stream inside the libvirtd connection (its TLS or SSH)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l resume-from -d 'Resume after this event sequence number' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand vm; and __fish_seen_subcommand_from watch" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "list" -d 'List nodes'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "get" -d 'Show a node'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "enable" -d 'Let the scheduler place VMs on a node again'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "disable" -d 'Stop placing new VMs on a node (cordon)'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "maintenance" -d 'Enter or exit maintenance'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "join-token" -d 'Create a token a new node\'s agent joins with'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "delete" -d 'Delete a node'
complete -c lqx -n "__fish_lqx_using_subcommand node; and not __fish_seen_subcommand_from list get enable disable maintenance join-token delete watch" -f -a "watch" -d 'Follow changes of one node or all nodes'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l phase -r -f -a "ready\t''
not-ready\t''
maintenance\t''
draining\t''"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -s l -l label -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -f -a "enter" -d 'Put a node into maintenance, migrating its VMs away'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from maintenance" -f -a "exit" -d 'Take a node out of maintenance'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l ttl -d 'Lifetime of the token' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l node-name -d 'Only admit a node of this name' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from join-token" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l force -d 'Delete even with VMs assigned (they become pending)'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Do not ask for confirmation (required when not interactive)'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l resume-from -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand node; and __fish_seen_subcommand_from watch" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -f -a "create" -d 'Create a user (password from a prompt or --password-stdin)'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -f -a "list" -d 'List users'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -f -a "update" -d 'Change a user\'s email, role or whether it is disabled'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -f -a "delete" -d 'Delete a user'
complete -c lqx -n "__fish_lqx_using_subcommand user; and not __fish_seen_subcommand_from create list update delete passwd" -f -a "passwd" -d 'Change your password, or (admins) reset another user\'s'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l role -r -f -a "admin\t''
operator\t''
viewer\t''"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l email -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l password-stdin -d 'Read the password from stdin'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l email -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l role -r -f -a "admin\t''
operator\t''
viewer\t''"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l disable -d 'Disable the account'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l enable -d 'Enable the account'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Do not ask for confirmation (required when not interactive)'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read from stdin: the old then the new password on two lines (only the new one for an admin reset)'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand user; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -f -a "create" -d 'Create an API key; its secret is printed once'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -f -a "list" -d 'List API keys'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and not __fish_seen_subcommand_from create list revoke" -f -a "revoke" -d 'Revoke an API key'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l role -d 'Role of the key (no higher than yours); default: yours' -r -f -a "admin\t''
operator\t''
viewer\t''"
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l ttl -d 'Lifetime, e.g. 30d' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l all -d 'Every user\'s keys (admins)'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -s y -l yes -d 'Do not ask for confirmation (required when not interactive)'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand apikey; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and not __fish_seen_subcommand_from list" -f -a "list" -d 'List audit entries, newest first'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l user -d 'Only this user\'s actions' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l action -d 'Only this action, e.g. compute.VMService/CreateVM' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l resource -d 'Only this resource id' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l result -d 'Only this result: ok, denied or error' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l since -d 'Only entries newer than this, e.g. 1h' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l limit -d 'At most this many entries' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand audit; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -f -a "list" -d 'List alerts'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -f -a "get" -d 'Show an alert'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -f -a "ack" -d 'Acknowledge an alert'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -f -a "resolve" -d 'Resolve an alert'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -f -a "summary" -d 'Counts of open alerts by severity'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and not __fish_seen_subcommand_from list get ack resolve summary webhook" -f -a "webhook" -d 'Manage alert webhooks'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l severity -r -f -a "critical\t''
warning\t''
info\t''"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l source-type -d 'Only alerts of this source type' -r -f -a "vm\t''
host\t''
storage\t''
network\t''
cluster\t''
system\t''"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l source -d 'Only alerts of this source id' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l unresolved -d 'Only open (unresolved) alerts'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l unacknowledged -d 'Only unacknowledged alerts'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from ack" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from resolve" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from summary" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -f -a "add" -d 'Add a webhook'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -f -a "list" -d 'List webhooks'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -f -a "delete" -d 'Delete a webhook'
complete -c lqx -n "__fish_lqx_using_subcommand alert; and __fish_seen_subcommand_from webhook" -f -a "test" -d 'Send a test alert to a webhook'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "status" -d 'Configuration, last run, imbalance and pending recommendations'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "list" -d 'List recommendations'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "get" -d 'Show a recommendation'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "approve" -d 'Approve a recommendation'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "apply" -d 'Apply a recommendation (performs the migration)'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "reject" -d 'Reject a recommendation'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "run" -d 'Run an analysis now'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "configure" -d 'Change the DRS configuration'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and not __fish_seen_subcommand_from status list get approve apply reject run configure simulate" -f -a "simulate" -d 'Plan offline over a cluster file (no server): what DRS would recommend'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l status -r -f -a "pending\t''
approved\t''
applying\t''
applied\t''
rejected\t''
failed\t''
expired\t''"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from approve" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l wait -d 'Wait until the operation is done (default on a terminal)'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l no-wait -d 'Return as soon as the server accepted the request'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from apply" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l reason -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from reject" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l enabled -r -f -a "true\t''
false\t''"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l automation -r -f -a "manual\t''
partial\t''
full\t''"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l interval -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l threshold-cpu -d 'CPU threshold, percent' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l threshold-memory -d 'Memory threshold, percent' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l migration-threshold -d '1 (mandatory moves only) .. 5 (aggressive)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l max-migrations-per-host -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from configure" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l cluster -d 'Cluster file (YAML: nodes and VMs; see docs/architecture.md, cluster files)' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l rounds -d 'Apply each round\'s moves and plan again, up to this many rounds' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l threshold-cpu -d 'CPU threshold, percent [default: the DRS default]' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l threshold-memory -d 'Memory threshold, percent [default: the DRS default]' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l migration-threshold -d '1 (mandatory moves only) .. 5 (aggressive) [default: the DRS default]' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand drs; and __fish_seen_subcommand_from simulate" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -f -a "status" -d 'Per-node health, lease age, protected VMs'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -f -a "failover" -d 'Declare a node down and restart its HA VMs elsewhere'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and not __fish_seen_subcommand_from status failover simulate" -f -a "simulate" -d 'Plan offline where a node\'s HA VMs would restart if it failed (no server needed)'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -s y -l yes -d 'Do not ask for confirmation (required when not interactive)'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from failover" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l cluster -d 'Cluster file (YAML: nodes and VMs; see docs/architecture.md, cluster files)' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l fail -d 'The node that fails' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand ha; and __fish_seen_subcommand_from simulate" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l type -d 'Resource types: vm, node, alert, drs, ha (comma-separated)' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l event -d 'Event types: created, updated, deleted, started, stopped, migrated, ...' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l id -d 'Only these resource ids' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l project -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l resume-from -d 'Resume after this sequence number' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand watch" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand watch" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand completion" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand completion" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand completion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand completion" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand help" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand help" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand help" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand help" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand help" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand help" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand help" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand help" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand help" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand help" -s V -l version -d 'Print version'
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l server -d 'Server URL, e.g. https://lqx.example.com or http://127.0.0.1:8080' -r
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l context -d 'Context (server and account) from the config to use' -r
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -s o -l output -d 'Output format [default: table]' -r -f -a "table\t'Aligned columns sized to the terminal'
wide\t'The table with more columns'
json\t'JSON (stable snake_case field names; lists are arrays of the objects `get` prints)'
yaml\t'YAML of the same objects as JSON'
name\t'One name (or id) per line, for scripts'"
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l columns -d 'Table columns to show, comma-separated (e.g. name,state,node)' -r
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l timeout -d 'Give up after this long: RPCs and --wait (e.g. 30s, 5m)' -r
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l ca-cert -d 'CA certificate (PEM) to trust for an https:// server with a private CA' -r -F
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l no-headers -d 'Leave out the table header line'
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l no-input -d 'Never prompt; fail where input would be needed'
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -l debug -d 'Show the full error chain and debug logs on stderr'
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lqx -n "__fish_lqx_using_subcommand __generate-docs" -s V -l version -d 'Print version'
