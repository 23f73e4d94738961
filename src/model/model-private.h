/* model-private.h - helpers shared by the files of the model module (not installed). */
#pragma once

#include "vmig/model.h"

/* Looks up @s in a NULL-free string table; the index is the enum value. */
gboolean vmig_model_table_lookup(const char *const *table, gsize n, const char *s, int *out);

/* Field readers. @what names the object ("VirtualMachineInstance ns1/vm1"), @path the field
 * ("spec.vmiName"). Absent members give the default and TRUE unless @required. */
JsonObject *vmig_model_get_object(JsonObject *o, const char *member, const char *what,
                                  const char *path, gboolean required, GError **error);
JsonArray *vmig_model_get_array(JsonObject *o, const char *member, const char *what,
                                const char *path, GError **error);
gboolean vmig_model_get_string(JsonObject *o, const char *member, const char *what,
                               const char *path, gboolean required, char **out, GError **error);
gboolean vmig_model_get_bool(JsonObject *o, const char *member, const char *what, const char *path,
                             gboolean *out, GError **error);
gboolean vmig_model_get_int(JsonObject *o, const char *member, const char *what, const char *path,
                            gint64 min, gint64 max, gint64 *out, GError **error);
gboolean vmig_model_get_string_map(JsonObject *o, const char *member, const char *what,
                                   const char *path, GHashTable **out, GError **error);
/* Reads a non-negative quantity and returns ceil(value) in @out. */
gboolean vmig_model_get_quantity_bytes(JsonObject *o, const char *member, const char *what,
                                       const char *path, gint64 *out, GError **error);

/* Prefixes @error's message with "@what: " is done by the readers themselves; this one sets a
 * fresh error. */
void vmig_model_set_error(GError **error, VmigModelError code, const char *what, const char *fmt,
                          ...) G_GNUC_PRINTF(4, 5);

gboolean vmig_model_meta_parse(JsonObject *root, const char *kind, gboolean namespaced,
                               VmigModelMeta *meta, char **what, GError **error);
void vmig_model_meta_clear(VmigModelMeta *meta);

gboolean vmig_model_conditions_parse(JsonObject *status, const char *what, GPtrArray **out,
                                     GError **error);
gboolean vmig_model_migration_state_parse(JsonObject *status, const char *what,
                                          VmigModelMigrationState **out, GError **error);
gboolean vmig_model_migration_options_parse(JsonObject *o, const char *what, const char *prefix,
                                            gboolean policy, VmigModelMigrationOptions *out,
                                            GError **error);
void vmig_model_migration_options_clear(VmigModelMigrationOptions *o);
