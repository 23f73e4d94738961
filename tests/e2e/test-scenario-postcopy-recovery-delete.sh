#!/usr/bin/env bash
# test-scenario-postcopy-recovery-delete.sh - the post-copy recovery scenario with the VMIM
# deleted during the outage (see test-scenario-postcopy-recovery.sh).
exec "$(dirname "$0")/test-scenario-postcopy-recovery.sh" --delete-vmim
