/* edit.h - declarative, precondition-checked edits of VMIM and VMI objects.
 *
 * Every write the controller makes goes through vmig_kube_mutate(): read the live
 * object from the server, apply an edit, write it back with its resourceVersion.
 * An edit says what must hold before it may apply (same object UID, VMIM phase in
 * a set, the VMI's migrationState owned by this migration) and which fields it
 * sets; it touches nothing else, so concurrent writers' fields survive (B04).
 * Pure: tested in tests/unit/test-controller-edit.c.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "vmig/kube.h"
#include "vmig/model.h"

G_BEGIN_DECLS

/* Is the VMIM with this UID alive (exists, not final)? Answered from the cache. */
typedef gboolean (*VmigCtlHolderLiveFunc)(const char *namespace_, const char *uid,
                                          gpointer user_data);

typedef struct {
    char *what; /* "VirtualMachineInstanceMigration ns1/mig1" for messages */

    /* preconditions */
    char *require_uid;     /* metadata.uid must equal this (the object was not recreated) */
    guint phase_mask;      /* VMIM: 1 << status.phase must be in this mask; 0 = any */
    gboolean not_deleting; /* refuse when metadata.deletionTimestamp is set */
    char *claim_uid;       /* VMI: status.migrationState.migrationUid must equal this... */
    gboolean claim_new;    /* ...or, to claim: be empty, or name a VMIM that is not alive */
    VmigCtlHolderLiveFunc holder_live;
    gpointer holder_live_data;
    char *require_target; /* VMI: migrationState.targetNode must equal this */

    /* changes */
    gboolean set_phase; /* VMIM status.phase (+ phaseTransitionTimestamps) */
    VmigModelMigrationPhase phase;
    char *now;                      /* RFC 3339, for phase transitions */
    gboolean reset_migration_state; /* replace status.migrationState by {} first (claim) */
    GPtrArray *sets;                /* VmigCtlSet*: dotted path -> value */
    char *add_finalizer;
    char *remove_finalizer;
} VmigCtlEdit;

typedef struct {
    char *path;
    char *key;       /* optional: a member of the object at @path (may contain dots) */
    JsonNode *value; /* NULL: remove the member */
} VmigCtlSet;

VmigCtlEdit *vmig_ctl_edit_new(const char *what);
void vmig_ctl_edit_free(VmigCtlEdit *edit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmigCtlEdit, vmig_ctl_edit_free)

/* Queue a change (value transfer full; NULL removes). */
void vmig_ctl_edit_set(VmigCtlEdit *edit, const char *path, JsonNode *value);
void vmig_ctl_edit_set_string(VmigCtlEdit *edit, const char *path, const char *value);
void vmig_ctl_edit_set_bool(VmigCtlEdit *edit, const char *path, gboolean value);
void vmig_ctl_edit_set_int(VmigCtlEdit *edit, const char *path, gint64 value);
/* Set (or remove, value NULL) member @key, which may contain dots (labels, annotations), of
 * the object at @path, creating it when absent. */
void vmig_ctl_edit_set_key(VmigCtlEdit *edit, const char *path, const char *key, JsonNode *value);

/* Allow the edit only from these VMIM phases. */
void vmig_ctl_edit_from_phases(VmigCtlEdit *edit, const VmigModelMigrationPhase *phases, guint n);

/**
 * vmig_ctl_edit_apply:
 * A VmigKubeMutateFunc (user_data = the VmigCtlEdit): checks the preconditions on the live
 * @object and applies the changes. Returns REFUSE with VMIG_KUBE_ERROR_REFUSED naming the
 * object and the failed precondition, UNCHANGED when every change is already in place.
 */
VmigKubeMutateResult vmig_ctl_edit_apply(JsonObject *object, gpointer user_data, GError **error);

/* A new node holding an empty object. (transfer full) */
JsonNode *vmig_ctl_empty_object(void);

/* RFC 3339 UTC time with seconds, as Kubernetes writes metav1.Time. (transfer full) */
char *vmig_ctl_now_rfc3339(gint64 wall_ms);

G_END_DECLS
