/* tls.c - mutual TLS between nodes with GnuTLS: credentials from a mounted Secret, reloaded when
 * the files change, and non-blocking sessions pinned to the expected peer node. */
#include "proxy-private.h"

#include <gnutls/x509.h>

/* TLS 1.3 preferred, 1.2 the minimum; AEAD ciphers only, AES-128-GCM first: with AES-NI it is
 * the fastest (memory pages are the bulk of the traffic), ChaCha20 last for hosts without. */
#define VMIG_PROXY_TLS_PRIORITY                                                                    \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"            \
    "+CHACHA20-POLY1305"

void
vmig_proxy_creds_unref(VmigProxyCreds *creds)
{
    if (creds && g_atomic_int_dec_and_test(&creds->ref)) {
        gnutls_certificate_free_credentials(creds->cred);
        g_free(creds);
    }
}

static VmigProxyCreds *
vmig_proxy_tls_load(VmigProxyTls *tls, GError **error)
{
    gnutls_certificate_credentials_t cred;
    int rc;
    if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0)
        goto fail_nocred;
    rc = gnutls_certificate_set_x509_key_file(cred, tls->cert_file, tls->key_file,
                                              GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        gnutls_certificate_free_credentials(cred);
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS,
                    "TLS certificate '%s' / key '%s': %s", tls->cert_file, tls->key_file,
                    gnutls_strerror(rc));
        return NULL;
    }
    /* The CA is both the root for dialling and the pool that verifies client certificates
     * (B24: requiring client certs without the CA as verification pool was a real bug). */
    rc = gnutls_certificate_set_x509_trust_file(cred, tls->ca_file, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
        gnutls_certificate_free_credentials(cred);
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS, "TLS CA bundle '%s': %s",
                    tls->ca_file, rc == 0 ? "no certificate" : gnutls_strerror(rc));
        return NULL;
    }
    VmigProxyCreds *c = g_new0(VmigProxyCreds, 1);
    c->ref = 1;
    c->cred = cred;
    return c;
fail_nocred:
    g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS, "TLS credentials: %s",
                gnutls_strerror(rc));
    return NULL;
}

static void
vmig_proxy_tls_stat(VmigProxyTls *tls, struct stat st[3])
{
    const char *files[3] = {tls->cert_file, tls->key_file, tls->ca_file};
    for (int i = 0; i < 3; i++) {
        if (stat(files[i], &st[i]) < 0)
            memset(&st[i], 0, sizeof st[i]);
    }
}

static gboolean
vmig_proxy_tls_same(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

gboolean
vmig_proxy_tls_init(VmigProxyTls *tls, const char *cert, const char *key, const char *ca,
                    const char *priority, GError **error)
{
    memset(tls, 0, sizeof *tls);
    if (!cert || !key || !ca) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS,
                    "TLS: cert_file, key_file and ca_file are required unless disableTLS");
        return FALSE;
    }
    tls->cert_file = g_strdup(cert);
    tls->key_file = g_strdup(key);
    tls->ca_file = g_strdup(ca);
    const char *errpos = NULL;
    int rc = gnutls_priority_init(&tls->priority, priority ? priority : VMIG_PROXY_TLS_PRIORITY,
                                  &errpos);
    if (rc < 0) {
        g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS, "TLS priority '%s' at '%s': %s",
                    priority, errpos ? errpos : "", gnutls_strerror(rc));
        vmig_proxy_tls_clear(tls);
        return FALSE;
    }
    vmig_proxy_tls_stat(tls, tls->st);
    tls->current = vmig_proxy_tls_load(tls, error);
    if (!tls->current) {
        vmig_proxy_tls_clear(tls);
        return FALSE;
    }
    return TRUE;
}

void
vmig_proxy_tls_clear(VmigProxyTls *tls)
{
    vmig_proxy_creds_unref(tls->current);
    if (tls->priority)
        gnutls_priority_deinit(tls->priority);
    g_free(tls->cert_file);
    g_free(tls->key_file);
    g_free(tls->ca_file);
    memset(tls, 0, sizeof *tls);
}

VmigProxyCreds *
vmig_proxy_tls_get_creds(VmigProxyTls *tls)
{
    /* A stat per new connection is cheap next to a handshake, and unlike inotify it also sees
     * the atomic symlink swap Kubernetes does when a Secret volume is updated. */
    struct stat now[3];
    vmig_proxy_tls_stat(tls, now);
    gboolean changed = FALSE;
    for (int i = 0; i < 3; i++)
        changed |= !vmig_proxy_tls_same(&now[i], &tls->st[i]);
    if (changed) {
        g_autoptr(GError) err = NULL;
        memcpy(tls->st, now, sizeof now);
        VmigProxyCreds *fresh = vmig_proxy_tls_load(tls, &err);
        if (fresh) {
            g_message("proxy: TLS certificate files changed, new connections use '%s'",
                      tls->cert_file);
            vmig_proxy_creds_unref(tls->current);
            tls->current = fresh;
        } else {
            /* Half-written Secret update: keep serving with the previous generation. */
            g_warning("proxy: reloading TLS files failed, keeping the previous ones: %s",
                      err->message);
        }
    }
    g_atomic_int_inc(&tls->current->ref);
    return tls->current;
}

gnutls_session_t
vmig_proxy_tls_session_new(VmigProxyTls *tls, VmigProxyCreds *creds, gboolean server, int fd,
                           const char *expected_name, const char *sni, GError **error)
{
    gnutls_session_t s = NULL;
    int rc = gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
    if (rc < 0)
        goto fail;
    if ((rc = gnutls_priority_set(s, tls->priority)) < 0 ||
        (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds->cred)) < 0)
        goto fail;
    if (server)
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    else if (sni && (rc = gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni))) < 0)
        goto fail;
    /* Chain to our CA, validity dates, and the peer's dNSName/CN = the expected node: the
     * handshake itself fails otherwise, on both sides. */
    gnutls_session_set_verify_cert(s, expected_name, 0);
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, GNUTLS_INDEFINITE_TIMEOUT);
    return s;
fail:
    if (s)
        gnutls_deinit(s);
    g_set_error(error, VMIG_PROXY_ERROR, VMIG_PROXY_ERROR_TLS, "TLS session: %s",
                gnutls_strerror(rc));
    return NULL;
}
