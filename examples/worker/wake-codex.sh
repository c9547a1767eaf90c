#!/bin/sh
# Wake a Codex session when mail arrives for its agent (README: Worker):
#
#   teamroom worker builder-2 --timeout 1800 -- examples/worker/wake-codex.sh SESSION_ID [CODEX_ARGS...]
#
# As wake-claude.sh, through `codex exec resume SESSION_ID -` (the prompt read from stdin). codex exec
# prints only the final agent message on stdout (its progress goes to stderr), so that message is
# the `result` reply. Extra arguments go to codex exec resume (e.g. -c key=value).
set -eu
session=${1:?usage: wake-codex.sh SESSION_ID [CODEX_ARGS...]}
shift
{
    printf 'teamroom: a message for you (%s) from %s, id %s, in thread %s.\n' \
        "$TEAMROOM_AGENT" "$TEAMROOM_FROM" "$TEAMROOM_MESSAGE_ID" "$TEAMROOM_THREAD_ID"
    printf 'Do what it asks. Your final answer is sent to %s as the reply, and teamroom worker acks the\n' \
        "$TEAMROOM_FROM"
    printf 'message when you finish: do not poll or ack it yourself. The message, as JSON:\n'
    cat
} | codex exec resume "$@" "$session" -
