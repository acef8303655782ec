#ifndef SLIPWAY_CLIBGIT2_SHIM_H
#define SLIPWAY_CLIBGIT2_SHIM_H

#include <git2.h>
#include <git2/sys/stream.h>
#include <git2/sys/transport.h>
/* Large blobs are inflated straight from their pack, a chunk at a time (GitKit's PackIndex). */
#include <zlib.h>

/* git_libgit2_opts is variadic, which Swift cannot call. These wrappers pin the arguments. */

static inline int slipway_git_set_strict_hash_verification(int enabled) {
    return git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, enabled);
}

static inline int slipway_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}

/* Either argument may be NULL; libgit2 loads what is given and replaces the certificates it had. */
static inline int slipway_git_set_ssl_cert_locations(const char *file, const char *directory) {
    return git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, file, directory);
}

static inline int slipway_git_set_cache_max_size(ssize_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, bytes);
}

static inline int slipway_git_set_cache_object_limit(git_object_t type, size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, type, bytes);
}

static inline int slipway_git_set_mwindow_mapped_limit(size_t bytes) {
    return git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, bytes);
}

/*
 * libgit2 finds its implementation from a pointer to the public struct it knows, so each of GitKit's own
 * transports and streams is that struct followed by one pointer back to the Swift object that does the work.
 * Swift cannot declare a struct whose first member is a C struct with a guaranteed layout, hence these here.
 */
typedef struct {
    git_smart_subtransport parent;
    void *owner;
} slipway_subtransport;

typedef struct {
    git_smart_subtransport_stream parent;
    void *owner;
} slipway_subtransport_stream;

typedef struct {
    git_stream parent;
    void *owner;
} slipway_stream;

#endif
