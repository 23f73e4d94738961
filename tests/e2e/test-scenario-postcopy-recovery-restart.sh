#!/usr/bin/env bash
# test-scenario-postcopy-recovery-restart.sh - the post-copy recovery scenario with the source
# daemon SIGKILLed during the outage (see test-scenario-postcopy-recovery.sh).
exec "$(dirname "$0")/test-scenario-postcopy-recovery.sh" --restart-source
