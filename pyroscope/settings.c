/* settings.c -- settings.v1.SettingsService: named strings the Profiles
 * Drilldown keeps on the server (its "pluginSettings" JSON), in one file in
 * the store's directory, as protobuf's JSON of a GetSettingsResponse.  Set
 * replaces a setting unless the stored one is newer (modifiedAt, ms; 0 or
 * absent means now), as Pyroscope's tenant settings store does; Delete
 * removes one.  Writes go through a temporary file and rename, so a crash
 * leaves the old file or the new one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pyroscope/internal.h"

/* Most settings and bytes the file may hold. */
#define SETTINGS_MAX 1024
#define SETTINGS_FILE_MAX (4u << 20)

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;

static int settings_load(pyroscope_call *c, Settings__V1__GetSettingsResponse **out,
                         firn_err *err)
{
    const char *path = c->api->settings_path;
    if (!path)
        return firn_errf(err, FIRN_EBUSY, "no settings store");
    struct stat st;
    if (stat(path, &st) < 0 && errno == ENOENT) {
        *out = pyroscope_new(c, &settings__v1__get_settings_response__descriptor);
        return 0;
    }
    unsigned char *data;
    size_t len;
    int rc = firn_read_file(path, SETTINGS_FILE_MAX, &data, &len, err);
    if (rc < 0)
        return rc == FIRN_ETOOBIG ? FIRN_EIO : rc;
    ProtobufCMessage *m;
    rc = pyroscope_json_decode(&settings__v1__get_settings_response__descriptor,
                               (const char *)data, len, &c->alloc, &m, err);
    free(data);
    if (rc < 0) {
        firn_err_prefix(err, "settings file %s", path);
        return FIRN_EIO;   /* the server's file, not the client's input */
    }
    *out = (Settings__V1__GetSettingsResponse *)m;
    return 0;
}

static int settings_save(pyroscope_call *c, const Settings__V1__GetSettingsResponse *s,
                         firn_err *err)
{
    firn_buf b = {0};
    pyroscope_json_encode(&s->base, &b);
    int rc = firn_write_file_atomic(c->api->settings_path, b.data, b.len, err);
    firn_buf_free(&b);
    return rc;
}

static int setting_find(const Settings__V1__GetSettingsResponse *s, const char *name)
{
    for (size_t i = 0; i < s->n_settings; i++)
        if (s->settings[i] && s->settings[i]->name && strcmp(s->settings[i]->name, name) == 0)
            return (int)i;
    return -1;
}

int pyroscope_rpc_settings_get(pyroscope_call *c, const ProtobufCMessage *in,
                               ProtobufCMessage **out, firn_err *err)
{
    (void)in;
    Settings__V1__GetSettingsResponse *s;
    pthread_mutex_lock(&settings_lock);
    int rc = settings_load(c, &s, err);
    pthread_mutex_unlock(&settings_lock);
    if (rc < 0)
        return rc;
    *out = &s->base;
    return 0;
}

int pyroscope_rpc_settings_set(pyroscope_call *c, const ProtobufCMessage *in,
                               ProtobufCMessage **out, firn_err *err)
{
    const Settings__V1__SetSettingsRequest *req = (const void *)in;
    const Settings__V1__Setting *want = req->setting;
    if (!want || !want->name || !*want->name)
        return firn_errf(err, FIRN_EINVAL, "setting.name is required");
    Settings__V1__SetSettingsResponse *resp =
        pyroscope_new(c, &settings__v1__set_settings_response__descriptor);
    Settings__V1__Setting *copy = pyroscope_new(c, &settings__v1__setting__descriptor);
    *copy = *want;
    if (!copy->value)
        copy->value = "";
    if (copy->modifiedat <= 0)
        copy->modifiedat = firn_now_ms();
    pthread_mutex_lock(&settings_lock);
    Settings__V1__GetSettingsResponse *s;
    int rc = settings_load(c, &s, err);
    if (rc == 0) {
        int i = setting_find(s, copy->name);
        if (i >= 0 && s->settings[i]->modifiedat > copy->modifiedat) {
            resp->setting = s->settings[i];   /* the stored one is newer: it stays */
        } else if (i >= 0) {
            s->settings[i] = copy;
            resp->setting = copy;
        } else if (s->n_settings >= SETTINGS_MAX) {
            rc = firn_errf(err, FIRN_ETOOBIG, "%d settings stored already", SETTINGS_MAX);
        } else {
            Settings__V1__Setting **v =
                firn_arena_calloc(c->arena, s->n_settings + 1, sizeof *v);
            if (s->n_settings)
                memcpy(v, s->settings, s->n_settings * sizeof *v);
            v[s->n_settings++] = copy;
            s->settings = v;
            resp->setting = copy;
        }
        if (rc == 0 && resp->setting == copy)
            rc = settings_save(c, s, err);
    }
    pthread_mutex_unlock(&settings_lock);
    if (rc < 0)
        return rc;
    *out = &resp->base;
    return 0;
}

int pyroscope_rpc_settings_delete(pyroscope_call *c, const ProtobufCMessage *in,
                                  ProtobufCMessage **out, firn_err *err)
{
    const Settings__V1__DeleteSettingsRequest *req = (const void *)in;
    if (!req->name || !*req->name)
        return firn_errf(err, FIRN_EINVAL, "name is required");
    pthread_mutex_lock(&settings_lock);
    Settings__V1__GetSettingsResponse *s;
    int rc = settings_load(c, &s, err);
    int i = rc == 0 ? setting_find(s, req->name) : -1;
    if (i >= 0) {
        memmove(&s->settings[i], &s->settings[i + 1],
                (s->n_settings - (size_t)i - 1) * sizeof *s->settings);
        s->n_settings--;
        rc = settings_save(c, s, err);
    }
    pthread_mutex_unlock(&settings_lock);
    if (rc < 0)
        return rc;
    *out = pyroscope_new(c, &settings__v1__delete_settings_response__descriptor);
    return 0;
}
