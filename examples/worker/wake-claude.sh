#!/bin/sh
# Wake a headless Claude Code session when mail arrives for its agent (README: Worker):
#
#   teamroom worker builder-1 --timeout 1800 -- examples/worker/wake-claude.sh SESSION_ID [CLAUDE_ARGS...]
#
# teamroom worker gives this script one message as JSON on stdin and its ids in TEAMROOM_*; the
# session gets it as its next prompt (claude -p reads the prompt from stdin), and the session's final
# answer, on stdout, goes back to the sender as a `result` reply. A non-zero exit gives the message
# back with the tail of stderr. Extra arguments go to claude (e.g. --permission-mode acceptEdits).
set -eu
session=${1:?usage: wake-claude.sh SESSION_ID [CLAUDE_ARGS...]}
shift
{
    printf 'teamroom: a message for you (%s) from %s, id %s, in thread %s.\n' \
        "$TEAMROOM_AGENT" "$TEAMROOM_FROM" "$TEAMROOM_MESSAGE_ID" "$TEAMROOM_THREAD_ID"
    printf 'Do what it asks. Your final answer is sent to %s as the reply, and teamroom worker acks the\n' \
        "$TEAMROOM_FROM"
    printf 'message when you finish: do not poll or ack it yourself. The message, as JSON:\n'
    cat
} | claude -p --resume "$session" "$@" --allowedTools mcp__teamroom
