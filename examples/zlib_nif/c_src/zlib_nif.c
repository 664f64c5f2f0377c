/* A NIF over the system's zlib (a library outside libc): crc32/1, compress/1, zlib_version/0. */
#include <erl_nif.h>
#include <zlib.h>

static ERL_NIF_TERM crc32_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary in;
    if (argc != 1 || !enif_inspect_iolist_as_binary(env, argv[0], &in)) {
        return enif_make_badarg(env);
    }
    uLong crc = crc32_z(crc32_z(0L, Z_NULL, 0), in.data, in.size);
    return enif_make_uint64(env, crc);
}

static ERL_NIF_TERM compress_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    ErlNifBinary in, out;
    if (argc != 1 || !enif_inspect_iolist_as_binary(env, argv[0], &in)) {
        return enif_make_badarg(env);
    }
    uLongf len = compressBound(in.size);
    if (!enif_alloc_binary(len, &out)) {
        return enif_raise_exception(env, enif_make_atom(env, "enomem"));
    }
    if (compress2(out.data, &len, in.data, in.size, Z_BEST_COMPRESSION) != Z_OK) {
        enif_release_binary(&out);
        return enif_raise_exception(env, enif_make_atom(env, "zlib_error"));
    }
    enif_realloc_binary(&out, len);
    return enif_make_binary(env, &out);
}

static ERL_NIF_TERM zlib_version_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    return enif_make_string(env, zlibVersion(), ERL_NIF_LATIN1);
}

static ErlNifFunc funcs[] = {
    {"crc32", 1, crc32_nif, 0},
    {"compress", 1, compress_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"zlib_version", 0, zlib_version_nif, 0},
};

ERL_NIF_INIT(Elixir.ZlibNif, funcs, NULL, NULL, NULL, NULL)
