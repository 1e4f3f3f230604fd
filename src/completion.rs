//! `procrun completions SHELL`: clap_complete's static script, plus, for
//! bash, zsh and fish, completion of the Procfile's entries after `start`
//! and `run`. The entries come from the hidden `procrun __entries`, given
//! the `-f`/`-d` options typed so far, so the script stays valid when the
//! Procfile changes and reads it as procrun does (`.foreman` too).
//!
//! clap_complete's dynamic completion (`CompleteEnv`) could do the same,
//! but it sits behind its `unstable-dynamic` feature and changes how the
//! script is installed (`source <(COMPLETE=bash procrun)`); a generated
//! script with a small hook keeps the usual `procrun completions bash >
//! file` and works with the stable API.

use clap_complete::Shell;

/// The hidden command that prints the entries, one per line.
pub const ENTRIES: &str = "__entries";

/// The completion script for `shell`.
pub fn script(shell: Shell, cmd: &mut clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, "procrun", &mut out);
    match shell {
        Shell::Bash => {
            out.extend_from_slice(BASH.as_bytes());
            out
        }
        Shell::Fish => {
            out.extend_from_slice(FISH.as_bytes());
            out
        }
        Shell::Zsh => {
            let text = String::from_utf8_lossy(&out)
                .replace(
                    "'*::names -- Only start these process types:_default'",
                    "'*::names -- Only start these process types:_procrun_entries'",
                )
                .replace(
                    "'*::command -- The command and its arguments, or the name of a Procfile entry:_default'",
                    "'*::command -- The command and its arguments, or the name of a Procfile entry:_procrun_run_words'",
                );
            // The helpers must exist before compdef runs the completion.
            let text = match text.split_once('\n') {
                Some((first, rest)) => format!("{first}\n{ZSH}{rest}"),
                None => text,
            };
            text.into_bytes()
        }
        _ => out,
    }
}

/// Wraps clap's `_procrun`: after `start` (any word) or right after `run`,
/// the entries are offered too.
const BASH: &str = r#"
# Procfile entries after `start` and `run`, from `procrun __entries`.
_procrun_with_entries() {
    _procrun "$@"
    local cur="${COMP_WORDS[COMP_CWORD]}" cmd="" i args=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -f|--procfile|-d|--root) args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
            --procfile=*|--root=*) args+=("${COMP_WORDS[i]}") ;;
            start|run) [[ -z "$cmd" ]] && cmd="${COMP_WORDS[i]}" ;;
        esac
    done
    [[ "$cur" == -* ]] && return 0
    if [[ "$cmd" == start || ( "$cmd" == run && "${COMP_WORDS[COMP_CWORD-1]}" == run ) ]]; then
        local entries
        entries="$(procrun __entries "${args[@]}" 2>/dev/null)"
        COMPREPLY+=( $(compgen -W "$entries" -- "$cur") )
    fi
    return 0
}
complete -F _procrun_with_entries -o bashdefault -o default procrun
"#;

const FISH: &str = r#"
# Procfile entries after `start` and `run`, from `procrun __entries`.
function __procrun_entries
    set -l args
    set -l tokens (commandline -opc)
    set -l n (count $tokens)
    for i in (seq $n)
        switch $tokens[$i]
            case -f --procfile -d --root
                if test $i -lt $n
                    set -a args $tokens[$i] $tokens[(math $i + 1)]
                end
            case '--procfile=*' '--root=*'
                set -a args $tokens[$i]
        end
    end
    procrun __entries $args 2>/dev/null
end
complete -c procrun -n "__fish_seen_subcommand_from start" -f -a "(__procrun_entries)" -d "process type"
complete -c procrun -n "__fish_seen_subcommand_from run" -a "(__procrun_entries)" -d "Procfile entry"
"#;

const ZSH: &str = r#"
# Procfile entries after `start` and `run`, from `procrun __entries`.
_procrun_entry_names() {
    local -a all args
    local i
    all=(${(z)BUFFER})
    for (( i = 1; i <= ${#all}; i++ )); do
        case ${all[i]} in
            -f|--procfile|-d|--root) args+=(${all[i]} ${(Q)all[i+1]}) ;;
            --procfile=*|--root=*) args+=(${(Q)all[i]}) ;;
        esac
    done
    procrun __entries $args 2>/dev/null
}
_procrun_entries() {
    local -a entries
    entries=(${(f)"$(_procrun_entry_names)"})
    compadd -a entries
}
_procrun_run_words() {
    if (( CURRENT == 1 )); then
        _procrun_entries
        _command_names -e
    else
        _default
    fi
}
"#;
