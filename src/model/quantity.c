/* quantity.c - Kubernetes quantities, parsed with the grammar and rounding of
 * k8s.io/apimachinery resource.ParseQuantity, in exact integer arithmetic.
 *
 * The value is kept as a count of nanos (10^-9) in 128 bits: every quantity vmigrated can use
 * (memory, disk sizes, bandwidth) is below 2^63 units, i.e. below 2^93 nanos, so 128 bits hold
 * it with room for the intermediate products; longer inputs are handled digit by digit and
 * never overflow. */
#include "model-private.h"

#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 vmig_u128;

#define NANOS_PER_UNIT 1000000000u

typedef struct {
    const char *suffix;
    int base10; /* decimal exponent */
    int base2;  /* binary exponent */
    VmigModelQuantityFormat format;
} SuffixRow;

/* apimachinery's suffixer table. */
static const SuffixRow suffix_table[] = {
    {"", 0, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},   {"n", -9, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},
    {"u", -6, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI}, {"m", -3, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},
    {"k", 3, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},  {"M", 6, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},
    {"G", 9, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},  {"T", 12, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},
    {"P", 15, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI}, {"E", 18, 0, VMIG_MODEL_QUANTITY_DECIMAL_SI},
    {"Ki", 0, 10, VMIG_MODEL_QUANTITY_BINARY_SI}, {"Mi", 0, 20, VMIG_MODEL_QUANTITY_BINARY_SI},
    {"Gi", 0, 30, VMIG_MODEL_QUANTITY_BINARY_SI}, {"Ti", 0, 40, VMIG_MODEL_QUANTITY_BINARY_SI},
    {"Pi", 0, 50, VMIG_MODEL_QUANTITY_BINARY_SI}, {"Ei", 0, 60, VMIG_MODEL_QUANTITY_BINARY_SI},
};

static gboolean
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* strconv.ParseInt(s, 10, 64): optional sign, at least one digit, no overflow. */
static gboolean
parse_int64(const char *s, gsize len, gint64 *out)
{
    gsize i = 0;
    gboolean neg = FALSE;
    guint64 v = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (i == len)
        return FALSE;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return FALSE;
        if (v > (G_MAXUINT64 - 9) / 10)
            return FALSE;
        v = v * 10 + (guint64)(s[i] - '0');
        if (v > (guint64)G_MAXINT64 + (neg ? 1u : 0u))
            return FALSE;
    }
    *out = neg ? (gint64)(0 - v) : (gint64)v;
    return TRUE;
}

static gboolean
interpret_suffix(const char *s, gsize len, int *base10, int *base2, VmigModelQuantityFormat *format)
{
    for (gsize i = 0; i < G_N_ELEMENTS(suffix_table); i++) {
        if (strlen(suffix_table[i].suffix) == len && memcmp(suffix_table[i].suffix, s, len) == 0) {
            *base10 = suffix_table[i].base10;
            *base2 = suffix_table[i].base2;
            *format = suffix_table[i].format;
            return TRUE;
        }
    }
    if (len > 1 && (s[0] == 'e' || s[0] == 'E')) {
        gint64 e;
        if (!parse_int64(s + 1, len - 1, &e))
            return FALSE;
        /* Beyond +-1000 the result is already overflow or "rounds up to one nano"; clamping
         * keeps the arithmetic below in range. */
        *base10 = (int)CLAMP(e, -1000, 1000);
        *base2 = 0;
        *format = VMIG_MODEL_QUANTITY_DECIMAL_EXPONENT;
        return TRUE;
    }
    return FALSE;
}

static gboolean
quantity_error(GError **error, VmigModelError code, const char *field, const char *text,
               const char *why)
{
    g_autofree char *cut = g_strndup(text, 64);
    g_autofree char *esc = g_strescape(cut, NULL);
    g_set_error(error, VMIG_MODEL_ERROR, code, "%s: quantity \"%s%s\" %s",
                field ? field : "quantity", esc, strlen(text) > 64 ? "..." : "", why);
    return FALSE;
}

gboolean
vmig_model_quantity_parse(const char *text, const char *field, VmigModelQuantity *out,
                          GError **error)
{
    if (!text || !*text)
        return quantity_error(
            error, VMIG_MODEL_ERROR_INVALID, field, "",
            "is empty; quantities must match ^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$");
    const char *s = text;
    gsize end = strlen(text), pos = 0;
    gboolean negative = FALSE;

    /* The scanner of apimachinery's parseQuantityString, step by step. */
    if (s[0] == '-' || s[0] == '+') {
        negative = s[0] == '-';
        pos++;
    }
    gsize zeros_start = pos;
    while (pos < end && s[pos] == '0')
        pos++;
    gboolean saw_digit = pos > zeros_start;
    gsize num_start = pos;
    while (pos < end && is_digit(s[pos]))
        pos++;
    gsize num_len = pos - num_start;
    gsize denom_start = pos, denom_len = 0;
    if (pos < end && s[pos] == '.') {
        pos++;
        denom_start = pos;
        while (pos < end && is_digit(s[pos]))
            pos++;
        denom_len = pos - denom_start;
    }
    saw_digit |= num_len > 0 || denom_len > 0;
    gsize suffix_start = pos;
    while (pos < end && strchr("eEinumkKMGTP", s[pos]))
        pos++;
    if (pos < end && (s[pos] == '-' || s[pos] == '+'))
        pos++;
    while (pos < end && is_digit(s[pos]))
        pos++;
    if (pos < end)
        return quantity_error(error, VMIG_MODEL_ERROR_INVALID, field, text,
                              "does not match ^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$");

    /* The documented grammar needs a digit ("-", "." and "e3" are not numbers); apimachinery's
     * scanner alone would read them as 0. */
    if (!saw_digit)
        return quantity_error(error, VMIG_MODEL_ERROR_INVALID, field, text,
                              "has no digits; quantities must match "
                              "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$");
    int base10 = 0, base2 = 0;
    VmigModelQuantityFormat format;
    if (!interpret_suffix(s + suffix_start, end - suffix_start, &base10, &base2, &format))
        return quantity_error(error, VMIG_MODEL_ERROR_INVALID, field, text,
                              "has an unknown suffix (use n u m k M G T P E, Ki Mi Gi Ti Pi Ei or "
                              "an exponent e<N>)");

    /* Significant digits, little-endian, of numerator.denominator without the point. */
    gsize ndig = num_len + denom_len;
    g_autofree guint8 *dig = g_malloc(ndig + 32);
    gsize n = 0;
    for (gsize i = 0; i < denom_len; i++)
        dig[n++] = (guint8)(s[denom_start + denom_len - 1 - i] - '0');
    for (gsize i = 0; i < num_len; i++)
        dig[n++] = (guint8)(s[num_start + num_len - 1 - i] - '0');
    while (n > 0 && dig[n - 1] == 0)
        n--;

    VmigModelQuantity q = {.format = format};
    if (n == 0) {
        *out = q;
        return TRUE;
    }

    /* Binary suffix: multiply the digit string by 2^base2, 2^10 at a time (each step keeps
     * digit * 1024 + carry far below 2^32). */
    for (int b = 0; b < base2; b += 10) {
        guint32 carry = 0;
        for (gsize i = 0; i < n; i++) {
            guint32 v = (guint32)dig[i] * 1024u + carry;
            dig[i] = (guint8)(v % 10);
            carry = v / 10;
        }
        while (carry) {
            dig[n++] = (guint8)(carry % 10);
            carry /= 10;
        }
    }

    /* Shift to nanos: value_nanos = digits * 10^k. */
    gint64 k = 9 - (gint64)MIN(denom_len, (gsize)G_MAXINT32) + base10;
    vmig_u128 nanos = 0;
    gboolean too_big = FALSE;
    if (k >= 0) {
        /* 31 digits of nanos are above 2^63 units already. */
        if ((gint64)n + k > 31) {
            too_big = TRUE;
        } else {
            for (gsize i = n; i-- > 0;)
                nanos = nanos * 10 + dig[i];
            for (gint64 i = 0; i < k; i++)
                nanos *= 10;
        }
    } else {
        gsize j = (gsize)(-k);
        gboolean round_up = FALSE;
        if (j >= n) {
            round_up = TRUE; /* non-zero but below one nano */
        } else if (n - j > 31) {
            too_big = TRUE;
        } else {
            for (gsize i = 0; i < j; i++)
                round_up |= dig[i] != 0;
            for (gsize i = n; i-- > j;)
                nanos = nanos * 10 + dig[i];
        }
        /* apimachinery rounds values more precise than a nano up, away from zero. */
        nanos += round_up ? 1 : 0;
    }
    if (!too_big && nanos / NANOS_PER_UNIT > (vmig_u128)G_MAXINT64)
        too_big = TRUE;
    if (too_big) {
        if (format != VMIG_MODEL_QUANTITY_BINARY_SI)
            return quantity_error(error, VMIG_MODEL_ERROR_RANGE, field, text,
                                  "is out of range (more than 2^63-1)");
        /* apimachinery caps BinarySI values at 2^63-1. */
        q.units = G_MAXINT64;
        q.nanos = 0;
    } else {
        q.units = (gint64)(nanos / NANOS_PER_UNIT);
        q.nanos = (guint32)(nanos % NANOS_PER_UNIT);
        /* apimachinery reports binary values between 0 and 1 as DecimalSI. */
        if (format == VMIG_MODEL_QUANTITY_BINARY_SI && q.units == 0)
            q.format = VMIG_MODEL_QUANTITY_DECIMAL_SI;
    }
    q.negative = negative;
    *out = q;
    return TRUE;
}

gboolean
vmig_model_quantity_from_json(JsonNode *node, const char *field, gboolean allow_negative,
                              VmigModelQuantity *out, GError **error)
{
    g_autofree char *text = NULL;
    GType t = node && JSON_NODE_HOLDS_VALUE(node) ? json_node_get_value_type(node) : G_TYPE_NONE;
    if (t == G_TYPE_STRING) {
        /* Quantity.UnmarshalJSON trims surrounding white space before parsing. */
        text = g_strstrip(g_strdup(json_node_get_string(node)));
    } else if (t == G_TYPE_INT64) {
        text = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
    } else if (t == G_TYPE_DOUBLE) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        text = g_strdup(g_ascii_formatd(buf, sizeof buf, "%.17g", json_node_get_double(node)));
    } else {
        g_set_error(error, VMIG_MODEL_ERROR, VMIG_MODEL_ERROR_TYPE,
                    "%s: a quantity must be a string or a number", field);
        return FALSE;
    }
    VmigModelQuantity q;
    if (!vmig_model_quantity_parse(text, field, &q, error))
        return FALSE;
    if (q.negative && !allow_negative)
        return quantity_error(error, VMIG_MODEL_ERROR_RANGE, field, text, "must not be negative");
    *out = q;
    return TRUE;
}

gint64
vmig_model_quantity_ceil(const VmigModelQuantity *q)
{
    gint64 v = q->units;
    if (q->nanos && v < G_MAXINT64)
        v++;
    return q->negative ? -v : v;
}

gboolean
vmig_model_quantity_is_zero(const VmigModelQuantity *q)
{
    return q->units == 0 && q->nanos == 0;
}
