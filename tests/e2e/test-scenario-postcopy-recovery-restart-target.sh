#!/usr/bin/env bash
# test-scenario-postcopy-recovery-restart-target.sh - the post-copy recovery scenario with the target
# daemon SIGKILLed during the outage (see test-scenario-postcopy-recovery.sh).
exec "$(dirname "$0")/test-scenario-postcopy-recovery.sh" --restart-target
